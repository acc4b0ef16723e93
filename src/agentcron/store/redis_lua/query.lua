-- Runs of a zset, newest first, within [min, max), whose status is one of `statuses`: a page
-- of (data, lease) pairs, or their count when limit is -1.
-- KEYS: zset. ARGV: max, min, offset, limit, run key prefix, statuses...
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2])
local wanted = {}
for i = 6, #ARGV do wanted[ARGV[i]] = true end
local offset, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local out, n = {}, 0
for _, id in ipairs(ids) do
  local s = redis.call('HGET', ARGV[5] .. id, 's')
  if s and wanted[s] then
    n = n + 1
    if limit >= 0 and n > offset then
      if #out >= 2 * limit then break end
      local v = redis.call('HMGET', ARGV[5] .. id, 'd', 'l')
      out[#out + 1] = v[1]
      out[#out + 1] = v[2]
    end
  end
end
if limit < 0 then return n end
return out
