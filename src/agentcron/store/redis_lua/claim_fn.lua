-- claim: claim one occurrence (SET NX with expiry), indexed per job (so deleting the job
-- drops it). `value` is "<call token> <node>": a claim already holding this call's own value
-- is won too, as the same call sent again after its reply was lost (redis-py retries once
-- on a dropped connection) must not lose the occurrence it took the first time. Returns 1
-- when won, else 0.
local function claim(key, index, value, ttl, score, forget)
  if not redis.call('SET', key, value, 'NX', 'EX', ttl) then
    if redis.call('GET', key) ~= value then return 0 end
  end
  redis.call('ZADD', index, score, key)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', forget)
  return 1
end
