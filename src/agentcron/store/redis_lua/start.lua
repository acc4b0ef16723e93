-- Start the fires due at one instant, atomically: claim each (`claim`) and, for each one
-- won, write its job's state (as set_state.lua does) and its `running` record, if any
-- (`record_run`). One script, so a dropped connection leaves all of it done or none; sent
-- again (redis-py retries once), its own claims are found won and the rest rewritten alike.
-- KEYS: jobs, jobstate, runs, leases, runjobs, then per fire: claim key, the job's claim
-- index, run key, job runs.
-- ARGV: "<call token> <node>", ttl s, forget-before us, runs bound, run key prefix, then per
-- fire: scheduled_for us, job id, state JSON, run id ('' = no record), data, fence, status,
-- node, lease iso, lease us, run score.
-- Returns 1 or 0 per fire; the same occurrence twice in one call is won once.
local won, taken = {}, {}
local k, a = 6, 6
for i = 1, (#KEYS - 5) / 4 do
  local key = KEYS[k]
  if taken[key] then
    won[i] = 0
  else
    won[i] = claim(key, KEYS[k + 1], ARGV[1], ARGV[2], ARGV[a], ARGV[3])
  end
  if won[i] == 1 then
    taken[key] = true
    local job = ARGV[a + 1]
    if redis.call('HEXISTS', KEYS[1], job) == 1 then redis.call('HSET', KEYS[2], job, ARGV[a + 2]) end
    if ARGV[a + 3] ~= '' then
      record_run(KEYS[k + 2], KEYS[3], KEYS[k + 3], KEYS[4], KEYS[5], ARGV[a + 3], ARGV[a + 4],
                 ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9], ARGV[a + 10],
                 job, ARGV[4], ARGV[5])
    end
  end
  k, a = k + 4, a + 11
end
return won
