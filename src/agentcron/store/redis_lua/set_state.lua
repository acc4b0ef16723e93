-- Scheduling state of a job that exists (an unknown id is ignored).
-- KEYS: jobs, jobstate. ARGV: job id, state JSON.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return 0
