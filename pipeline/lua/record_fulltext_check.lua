-- Record whether a feed's text was its article on one more page check (pipeline/fulltext.py):
-- one more in the streak, or the streak back to 0. Only on a feed that still exists (a feed
-- removed meanwhile must not come back as a hash with nothing but this field).
-- KEYS[1]=feed  ARGV: 1 (the feed's text was the article) or 0
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[1] == '1' then return redis.call('HINCRBY', KEYS[1], 'fulltext_streak', 1) end
redis.call('HSET', KEYS[1], 'fulltext_streak', 0)
return 0
