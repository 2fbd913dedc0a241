-- Of the feeds at ranks ARGV[1]..ARGV[2] of the due ZSET (KEYS[1]), how many were never polled:
-- a hash with no last_poll and no errors (registry.feed_health "new"). ARGV[3]: the prefix of
-- a feed's hash key. Returns {feeds looked at, of them new}.
local ids = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2])
local new = 0
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', ARGV[3] .. id, 'id', 'last_poll', 'errors')
  if f[1] and (not f[2] or f[2] == '') and (not f[3] or f[3] == '' or f[3] == '0') then
    new = new + 1
  end
end
return {#ids, new}
