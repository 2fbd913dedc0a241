-- Step 1: the same URL (nothing to do) or the same normalized text (a same_text copy).
local existing = mark_get(KEYS[1], item_field)
if not existing then  -- written before the buckets (Keys.legacy_item): read until it expires
  local legacy = redis.call('GET', KEYS[8])
  existing = legacy and (string.match(legacy, '^dup:(.+)$') or '')
end
if existing then
  return {'duplicate_url', existing ~= '' and existing or args.id}
end

-- The withheld item is kept whole (field "item") next to why it was withheld ("duplicate"),
-- so a consumer can audit a merge and recover the item.
local function record_duplicate(kept, reason, sim, why)
  local record = cjson.decode(args.duplicate)
  record['duplicate_of'] = kept
  record['reason'] = reason
  if sim then record['similarity'] = sim end
  if why then record['alignment'] = why end
  record['routed'] = route_copy(kept)  -- the routes this copy was delivered on, if any
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', args.maxlen, '*',
             'duplicate', cjson.encode(record), 'item', args.item)
  mark_put(KEYS[1], item_field, kept)
  redis.call('HINCRBY', KEYS[5], '{{STAT_DUPLICATES}}', 1)
end

if args.dedupe_content then
  local other = mark_get(KEYS[2], content_field) or redis.call('GET', KEYS[9])
  if other and other ~= args.id then
    record_duplicate(other, 'same_text', nil)
    return {'duplicate_content', other}
  end
end
