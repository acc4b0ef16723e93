-- Insert a job unless its id is taken; with its scheduling state and audit entry.
-- KEYS: jobs, jobstate, audit, job audit. ARGV: job id, job data JSON, state JSON ('' for
-- none), audit entry JSON, audit length kept.
-- Returns nil when inserted, else {stored job data, stored state or false}.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return {redis.call('HGET', KEYS[1], ARGV[1]), redis.call('HGET', KEYS[2], ARGV[1])}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
local keep = tonumber(ARGV[5])
for i = 3, 4 do
  redis.call('LPUSH', KEYS[i], ARGV[4])
  redis.call('LTRIM', KEYS[i], 0, keep - 1)
end
return nil
