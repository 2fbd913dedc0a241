-- Record why an extract attempt failed, with the number of the attempt: an attempt whose process
-- died records nothing, so the dead letter says "crashed" rather than an older attempt's reason.
-- KEYS[1]=attempts  ARGV: reason
local attempt = redis.call('HGET', KEYS[1], 'count') or '0'
redis.call('HSET', KEYS[1], 'reason', ARGV[1], 'reason_attempt', attempt)
return attempt
