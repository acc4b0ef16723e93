-- record_run: insert or update a run unless its stored fence is higher; index it; bound the
-- job's log. Keys: run, runs, job runs, leases, runjobs. Values: id, data, fence, status,
-- node, lease iso, lease us, score, job, bound, run key prefix. Returns 1, or 0 when fenced.
-- A stored fence that is not a number (a hand edit) fences nothing.
local function record_run(k_run, k_runs, k_job_runs, k_leases, k_runjobs, id, data, fence,
                          status, node, lease_iso, lease_us, score, job, bound, prefix)
  local old = redis.call('HGET', k_run, 'f')
  if old and (tonumber(old) or -1) > tonumber(fence) then return 0 end
  redis.call('HSET', k_run, 'd', data, 'f', fence, 's', status, 'n', node,
             'l', lease_iso, 'j', job)
  redis.call('ZADD', k_runs, score, id)
  redis.call('ZADD', k_job_runs, score, id)
  redis.call('SADD', k_runjobs, job)
  if status == 'running' and lease_us ~= '' then
    redis.call('ZADD', k_leases, lease_us, id)
  else
    redis.call('ZREM', k_leases, id)
  end
  if not old then
    local excess = redis.call('ZCARD', k_job_runs) - tonumber(bound)
    if excess > 0 then
      for _, other in ipairs(redis.call('ZRANGE', k_job_runs, 0, excess + 99)) do
        if excess <= 0 then break end
        local s = redis.call('HGET', prefix .. other, 's')
        if s ~= 'running' and s ~= 'scheduled' and other ~= id then
          redis.call('DEL', prefix .. other)
          redis.call('ZREM', k_runs, other)
          redis.call('ZREM', k_job_runs, other)
          excess = excess - 1
        end
      end
    end
  end
  return 1
end
