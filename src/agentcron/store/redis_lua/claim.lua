-- Claim one occurrence: SET NX with expiry, indexed per job (so deleting the job drops it).
-- KEYS: claim key, the job's claim index. ARGV: node id, ttl s, scheduled_for us, forget-before us.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
  return 1
end
return 0
