-- Not a copy: published, marked, counted and indexed.
local sid = redis.call('XADD', KEYS[3], 'MAXLEN', '~', args.maxlen, '*', 'item', args.item)
route_item()
mark_put(KEYS[1], item_field, nil)
if args.dedupe_content then mark_put(KEYS[2], content_field, args.id) end
redis.call('HINCRBY', KEYS[5], '{{STAT_PUBLISHED}}', 1)
if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('HINCRBY', KEYS[6], 'items', 1) end
if near then index_record(my_record) end
return {'published', sid}
