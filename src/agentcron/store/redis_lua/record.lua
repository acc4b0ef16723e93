-- Insert or update a run unless its stored fence is higher; index it; bound the job's log.
-- KEYS: run, runs, job runs, leases, runjobs. ARGV: id, data, fence, status, node, lease iso,
-- lease us, score, job, bound, run key prefix.
-- A stored fence that is not a number (a hand edit) fences nothing.
local old = redis.call('HGET', KEYS[1], 'f')
if old and (tonumber(old) or -1) > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'f', ARGV[3], 's', ARGV[4], 'n', ARGV[5],
           'l', ARGV[6], 'j', ARGV[9])
redis.call('ZADD', KEYS[2], ARGV[8], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[8], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[9])
if ARGV[4] == 'running' and ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[1])
else
  redis.call('ZREM', KEYS[4], ARGV[1])
end
if not old then
  local excess = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[10])
  if excess > 0 then
    for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, excess + 99)) do
      if excess <= 0 then break end
      local s = redis.call('HGET', ARGV[11] .. id, 's')
      if s ~= 'running' and s ~= 'scheduled' and id ~= ARGV[1] then
        redis.call('DEL', ARGV[11] .. id)
        redis.call('ZREM', KEYS[2], id)
        redis.call('ZREM', KEYS[3], id)
        excess = excess - 1
      end
    end
  end
end
return 1
