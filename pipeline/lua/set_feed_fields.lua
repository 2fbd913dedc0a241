-- Set fields of a feed's hash, only while the feed exists: a feed removed meanwhile must not
-- come back as a hash holding nothing but these fields (never polled, listed without a URL).
-- KEYS[1]=feed hash  ARGV: field, value, ... (registry's encoding of feed state)
-- Returns 1 (set) or 0 (the feed is gone).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
