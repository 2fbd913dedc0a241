-- Step 1's bookkeeping: the exact-dedupe marks (by URL and by text) in hash buckets.
-- Exact-dedupe marks (Keys.item_mark) in hash buckets: "<day>" or "<day>:<item id>". A write to
-- a bucket not pruned for prune_days drops its entries older than keep_days first; the bucket
-- itself expires when nothing was written to it for longer than any entry must live.
local function marks_prune(bucket)
  local entries, old = redis.call('HGETALL', bucket), {}
  local oldest = tonumber(today) - tonumber(keep_days)
  for i = 1, #entries, 2 do
    if entries[i] ~= '~' and tonumber(string.match(entries[i + 1], '^%d+')) < oldest then
      old[#old + 1] = entries[i]
      if #old == 1000 then redis.call('HDEL', bucket, unpack(old)); old = {} end
    end
  end
  if #old > 0 then redis.call('HDEL', bucket, unpack(old)) end
  redis.call('HSET', bucket, '~', today)
  redis.call('EXPIRE', bucket, tostring((keep_days + prune_days) * 86400))
end
local function mark_put(bucket, field, kept)
  redis.call('HSET', bucket, field, kept and today .. ':' .. kept or today)
  local pruned = redis.call('HGET', bucket, '~')
  if not pruned or tonumber(today) - tonumber(pruned) >= tonumber(prune_days) then
    marks_prune(bucket)
  end
end
local function mark_get(bucket, field)  -- nil, '' (published) or the kept item's id
  local entry = redis.call('HGET', bucket, field)
  return entry and string.match(entry, '^%d+:?(.*)$')
end
