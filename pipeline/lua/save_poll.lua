-- Store one poll's outcome and the feed's next poll time, unless the feed was removed
-- meanwhile: in one script, so a removal between the check and the writes cannot leave a hash
-- with only the poll's fields (a feed half brought back, never polled, listed without a URL).
-- KEYS[1]=feed hash  KEYS[2]=feeds_due  KEYS[3]=feeds_erroring
-- ARGV: 1 feed id, 2 next poll (unix seconds), 3 consecutive errors ('' when the poll did not
--       end: a deferred one leaves the count as it was), 4.. field, value, ... (registry's
--       encoding of a PollRecord)
-- Returns 1 (saved) or 0 (the feed is gone).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'next_poll', ARGV[2], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
if ARGV[3] == '0' then
  redis.call('ZREM', KEYS[3], ARGV[1])
elseif ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
end
return 1
