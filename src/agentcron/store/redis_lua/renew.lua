-- Extend a lease if the run is still running, ours, and at our fence.
-- KEYS: run, leases. ARGV: node id, fence, until iso, until us, run id.
if redis.call('HGET', KEYS[1], 's') ~= 'running' or redis.call('HGET', KEYS[1], 'n') ~= ARGV[1]
   or redis.call('HGET', KEYS[1], 'f') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'l', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
return 1
