-- Take up to ARGV[3] feeds due at ARGV[1] and push each one's score ARGV[2] seconds ahead (a
-- lease): a feed whose poll dies becomes due again when the lease runs out, with no other
-- bookkeeping. Overlapping dispatch runs never take the same feed twice.
-- KEYS[1]=feeds_due  ARGV: now, lease seconds, limit
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local lease = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', lease, id) end
return ids
