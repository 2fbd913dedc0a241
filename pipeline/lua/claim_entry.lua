-- Claim one entry for this poll. Returns 1: new, fetch it; 0: seen; 3: claimed by another poll
-- still in progress (or one that died: the claim expires); 2: its URL was already published
-- from another feed (marked seen, no page fetch).
-- The claim has a short TTL until confirm: a poll that dies releases it by expiry.
-- KEYS[1]=entry_seen  KEYS[2]=item_mark's HASH  KEYS[3]=legacy_item
-- ARGV: claim ttl, seen ttl, item_mark's field
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('SET', KEYS[1], 'done', 'EX', tonumber(ARGV[2]))
  return 2
end
if redis.call('SET', KEYS[1], 'claimed', 'NX', 'EX', tonumber(ARGV[1])) then return 1 end
if redis.call('GET', KEYS[1]) == 'claimed' then return 3 end
return 0
