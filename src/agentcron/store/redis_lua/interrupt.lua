-- Takeover of one expired run: only if nobody renewed, finished or took it over meanwhile.
-- KEYS: run, leases. ARGV: run id, now us, expected fence, interrupted record JSON, taker token
-- (unique per call: the same call re-sent after a lost reply is told it won).
if redis.call('HGET', KEYS[1], 't') == ARGV[5] then return 1 end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
if redis.call('HGET', KEYS[1], 's') ~= 'running' or redis.call('HGET', KEYS[1], 'f') ~= ARGV[3]
  then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[4], 'f', tonumber(ARGV[3]) + 1, 's', 'interrupted', 'l', '',
           't', ARGV[5])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
