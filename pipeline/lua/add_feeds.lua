-- add_feeds' writes of one batch, atomic: KEYS[1] the due ZSET, KEYS[2..] the feeds' hashes;
-- ARGV[1] now, then per feed its id, its number of fields (_spec_fields) and the field/value
-- pairs. Each feed: its fields set, added_at set if it has none, due now if it was not in the
-- ZSET. Returns how many feeds were new. One command per batch: a MULTI of HSET/HSETNX/ZADD
-- cost 3x the client time, in redis-py's packing and its QUEUED replies (bench/import_bench.py).
local now = ARGV[1]
local new = 0
local at = 2
for i = 2, #KEYS do
  local fields = tonumber(ARGV[at + 1])
  redis.call('HSET', KEYS[i], unpack(ARGV, at + 2, at + 1 + 2 * fields))
  redis.call('HSETNX', KEYS[i], 'added_at', now)
  new = new + redis.call('ZADD', KEYS[1], 'NX', now, ARGV[at])
  at = at + 2 + 2 * fields
end
return new
