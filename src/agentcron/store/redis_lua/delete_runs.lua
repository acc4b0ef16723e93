-- Delete the given runs if they are (still) final. KEYS: all-runs zset, per-job zset prefix.
-- ARGV: run ids..., run key prefix.
local n = 0
for i = 1, #ARGV - 1 do
  local id = ARGV[i]
  local key = ARGV[#ARGV] .. id
  local s = redis.call('HGET', key, 's')
  if s and s ~= 'running' and s ~= 'scheduled' then
    local job = redis.call('HGET', key, 'j')
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], id)
    if job then redis.call('ZREM', KEYS[2] .. job, id) end
    n = n + 1
  end
end
return n
