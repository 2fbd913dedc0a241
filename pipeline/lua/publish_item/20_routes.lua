-- Routes: the streams of the routes an item matches, and what a story's copies reach.
local routing = cjson.decode(ARGV[7])
if (redis.call('GET', KEYS[10]) or '0') ~= routing.version then
  return {'routes_changed'}
end
local function routed_mark(id)  -- Keys.routed_mark
  return routing.marks .. string.sub(id, 1, routing.bucket), string.sub(id, routing.bucket + 1)
end
local function route_item()
  for i = 1, #routing.names do
    redis.call('XADD', KEYS[10 + i], 'MAXLEN', '~', args.maxlen, '*', 'item', args.item)
  end
  if #routing.names > 0 then
    local bucket, field = routed_mark(args.id)
    mark_put(bucket, field, table.concat(routing.names, ','))
  end
end
-- The copy's item as a member of the kept item's cluster (msgspec writes the field exactly so).
local function as_copy(kept)
  local mine = '"cluster":{"id":"' .. args.id .. '","size":1}'
  local at = string.find(args.item, mine, 1, true)
  if not at then return args.item end
  local size = (tonumber(redis.call('ZSCORE', KEYS[7], kept)) or 1) + 1
  return string.sub(args.item, 1, at - 1) .. '"cluster":{"id":"' .. kept .. '","size":'
         .. string.format('%d', size) .. '}' .. string.sub(args.item, at + #mine)
end
-- A copy reaches the routes its story has not: the first source a route takes brings it there.
local function route_copy(kept)
  if #routing.names == 0 then return nil end
  local bucket, field = routed_mark(kept)
  local reached, delivered = {}, {}
  for name in string.gmatch(mark_get(bucket, field) or '', '[^,]+') do reached[name] = true end
  local item = nil
  for i, name in ipairs(routing.names) do
    if not reached[name] then
      item = item or as_copy(kept)
      redis.call('XADD', KEYS[10 + i], 'MAXLEN', '~', args.maxlen, '*', 'item', item)
      delivered[#delivered + 1] = name
      reached[name] = true
    end
  end
  if #delivered == 0 then return nil end
  local all = {}
  for name in pairs(reached) do all[#all + 1] = name end
  table.sort(all)
  mark_put(bucket, field, table.concat(all, ','))
  return delivered
end
