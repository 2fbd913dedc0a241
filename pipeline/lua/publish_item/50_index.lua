-- The index: a day's records packed into chunks, the window's slot tables, and writing an
-- item's record and bands into them.
-- Where a day's n-th record is: 6 bytes (chunk, offset, length) at (n - 1) * 6 of its ``where``.
local function record(day, n)
  local at = (n - 1) * 6
  local where = redis.call('GETRANGE', prefix .. day .. ':where', tostring(at), tostring(at + 5))
  if #where < 6 then return nil end
  local chunk, offset, length = struct.unpack('>I2>I2>I2', where)
  local docs = prefix .. day .. ':docs:' .. chunk
  return redis.call('GETRANGE', docs, tostring(offset), tostring(offset + length - 1))
end

-- Appends a record to today's last chunk (a new one when it would not fit); returns its number,
-- or nil when the day's 65,536 chunks (~14 million items) are full: the item is then published
-- unindexed, as a text too short to fingerprint is, rather than overwriting chunk 0.
local function store_record(today, rec)
  local where = today .. ':where'
  local chunk, offset = 0, 0
  local last = redis.call('GETRANGE', where, '-6', '-1')
  if #last == 6 then
    local c, o, length = struct.unpack('>I2>I2>I2', last)
    chunk, offset = c, o + length
    if offset + #rec > chunk_bytes then chunk, offset = c + 1, 0 end
    if chunk > 65535 then return nil end
  end
  local docs = today .. ':docs:' .. chunk
  if offset == 0 then
    redis.call('SETRANGE', docs, tostring(chunk_bytes - 1), '\0')  -- a new key: exact size
    redis.call('EXPIRE', docs, index_ttl)
  end
  redis.call('SETRANGE', docs, tostring(offset), rec)
  local size = redis.call('APPEND', where, struct.pack('>I2>I2>I2', chunk, offset, #rec))
  if size == 6 then redis.call('EXPIRE', where, index_ttl) end
  return size / 6
end

-- The window's slot tables (``slots:<number>``, dedupe.table_slots sizes them), listed oldest
-- first in ``tables``: "number:slots:last day" each, the last day being "-" for the one taking
-- entries. An older table is read until its last day leaves the window.
local tables_key = prefix .. 'tables'
local tables = {}
if near then
  local listed = redis.call('GET', tables_key) or ''
  for number, slots, last in string.gmatch(listed, '(%d+):(%d+):(%S+)') do
    if last == '-' or last >= days[#days] then
      tables[#tables + 1] = {number = number, slots = tonumber(slots), last = last}
    end
  end
end

-- The BITFIELD(_RO) offsets of the bands' slots in a table of that many slots, built once per
-- size, as strings (redis.call converting 40 numbers costs more than the read). Numbers become
-- strings with string.format('%d'), faster than tostring's '%.14g' (docs/dedupe.md).
local format = string.format
local offsets = {}
local function slot_offsets(slots)
  if not offsets[slots] then
    local at = {}
    for i, position in ipairs(positions) do at[i] = format('#%d', position % slots) end
    offsets[slots] = at
  end
  return offsets[slots]
end
local function slot_gets(slots)
  local args = {}
  for i, at in ipairs(slot_offsets(slots)) do
    args[3 * i - 2] = 'GET'; args[3 * i - 1] = 'u40'; args[3 * i] = at
  end
  return args
end

-- Slots of a new table holding at least ``wanted``, like dedupe.table_slots: sizes step through
-- allocator size classes, four per doubling (table_min_bytes, table_max_bytes, string_slack).
local function table_slots(wanted)
  local base, step = args.table_min_bytes, 0
  while base * (4 + step) / 4 < args.table_max_bytes and (base * (4 + step) / 4 - args.string_slack) / 5 < wanted do
    if step == 3 then base, step = base * 2, 0 else step = step + 1 end
  end
  return math.floor((base * (4 + step) / 4 - args.string_slack) / 5)
end

-- Slots of the largest table (table_max_bytes, a power of two like the smallest: in the series).
local largest = math.floor((args.table_max_bytes - args.string_slack) / 5)

local function save_tables()
  local listed = {}
  for _, t in ipairs(tables) do
    listed[#listed + 1] = t.number .. ':' .. t.slots .. ':' .. t.last
  end
  redis.call('SET', tables_key, table.concat(listed, ' '), 'EX', index_ttl)
end

-- Starts a table holding at least ``wanted`` slots, taking entries from now on. A small table
-- (up to copy_max_bytes) that four times its size would do is copied into it four
-- times over: every entry stays at its position modulo the new size, and the old table goes.
-- A larger one is kept, and read until its last day leaves the window.
local function new_table(wanted)
  local current = tables[#tables]
  local number = current and current.number + 1 or 0
  local key = prefix .. 'slots:' .. number
  local small = current and current.slots * 5 <= args.copy_max_bytes and current.slots * 4 <= largest
  if small and current.slots * 4 >= wanted then
    -- Created at its full size first, then written in place (string.rep in Lua took 20x longer).
    local old, bytes = prefix .. 'slots:' .. current.number, current.slots * 5
    local content = redis.call('GET', old) or ''
    redis.call('SETRANGE', key, tostring(4 * bytes - 1), '\0')
    redis.call('EXPIRE', key, index_ttl)
    if #content == bytes then
      for i = 0, 3 do redis.call('SETRANGE', key, tostring(i * bytes), content) end
    end
    redis.call('DEL', old)
    tables[#tables] = {number = number, slots = current.slots * 4, last = '-'}
  else
    local slots = table_slots(wanted)
    redis.call('SETRANGE', key, tostring(slots * 5 - 1), '\0')
    redis.call('EXPIRE', key, index_ttl)
    if current then
      current.last = days[1]
      redis.call('EXPIRE', prefix .. 'slots:' .. current.number, index_ttl)
    end
    tables[#tables + 1] = {number = number, slots = slots, last = '-'}
    if slots >= largest then  -- its items are counted
      redis.call('SET', key .. ':items', '1', 'EX', index_ttl)
    end
  end
  save_tables()
  return tables[#tables]
end

-- A table of the largest size counts its items (``slots:<number>:items``, from the one that
-- started it): past the max load another one of that size is started, and the full one is read
-- until it leaves the window.
local function largest_table_for(n, current)
  local key = prefix .. 'slots:' .. current.number
  local items = redis.call('INCR', key .. ':items')
  if items * #positions > current.slots * args.slot_load_max then return new_table(current.slots) end
  if n == 1 or items == 1 then
    redis.call('EXPIRE', key, index_ttl)
    redis.call('EXPIRE', key .. ':items', index_ttl)
    save_tables()
  end
  return current
end

-- The table taking today's n-th item. A day's first item checks it against the busiest day in
-- the window (slot_load, slot_load_max) and keeps it and the list from expiring; an item that
-- takes today alone past the max load starts one four times as large.
local function table_for(n)
  local current = tables[#tables]
  local entries_per_day = #positions * #days
  if current and current.slots >= largest then
    return largest_table_for(n, current)
  end
  if n == 1 or not current then
    local busiest = 1
    for _, day in ipairs(days) do
      busiest = math.max(busiest, redis.call('STRLEN', prefix .. day .. ':where') / 6)
    end
    if not current or busiest * entries_per_day > current.slots * args.slot_load_max then
      return new_table(busiest * entries_per_day / args.slot_load)
    end
    redis.call('EXPIRE', prefix .. 'slots:' .. current.number, index_ttl)
    save_tables()
  elseif n * entries_per_day > current.slots * args.slot_load_max then
    return new_table(current.slots * 4)
  end
  return current
end

-- Indexes a doc record: appended to today's records, its bands written into the window table.
local function index_record(rec)
  local n = store_record(prefix .. days[1], rec)
  if not n or n >= ITEM_SPAN then return end
  local current = table_for(n)
  local set, day = {}, codes[1] * ITEM_SPAN + n
  for i, at in ipairs(slot_offsets(current.slots)) do
    set[4 * i - 3] = 'SET'; set[4 * i - 2] = 'u40'; set[4 * i - 1] = at
    set[4 * i] = format('%d', checks[i] + day)
  end
  redis.call('BITFIELD', prefix .. 'slots:' .. current.number, unpack(set))
end
