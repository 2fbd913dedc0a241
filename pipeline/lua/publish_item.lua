-- Publish an item exactly once, or record why not. One script, so there is no window between
-- "is it new?" and "publish" in which another worker or a retried task could slip in:
--   1. its URL was published (retry, redelivery, same article in two feeds) -> nothing;
--   2. the same normalized text was published under another URL -> feedpipe:duplicates;
--   3. near-duplicate: candidates from the window's slot table (one BITFIELD_RO reads the
--      slots of the item's 40 LSH bands) are verified
--      (MinHash resemblance, containment, leads, the lead's number words; see
--      pipeline/dedupe.py, the reference) and the
--      best match found makes it a duplicate -> feedpipe:duplicates, kept item's cluster grows
--      and the copy is indexed under the kept item's id, naming the kept item's record (a later
--      item joins through it only if the slot check passes against both: docs/dedupe.md);
--   4. otherwise XADD to the output stream and write its bands into the window's slot table.
-- KEYS: 1 item_mark's HASH, 2 content_mark's HASH, 3 output stream, 4 duplicates stream,
--       5 stats, 6 feed hash, 7 clusters ZSET, 8 legacy_item, 9 legacy_content,
--       10 routes_version, 11.. the streams of the routes the item matches (ARGV[7]'s order)
-- ARGV: 1 the item's arguments by name, one msgpack map (publish.PublishArgs says what each
--         holds): id, today, keep_days, prune_days (the exact-dedupe marks), maxlen, item and
--         duplicate (JSON), dedupe_content, near, index_prefix, days ("YYYYMMDD:code,..."
--         today first, dedupe.window_arg), index_ttl, shingles, lead_shingles, jaccard,
--         containment, lead, max_candidates, slot_load, slot_load_max, table_min_bytes,
--         table_max_bytes, string_slack, chunk_bytes, copy_max_bytes, source, title,
--         cluster_prefix, item_field, content_field;
--       2-5 the byte strings (Redis's cmsgpack reads no msgpack bin): 2 signature, 3 lead
--         signature, 4 record (dedupe.doc_record), 5 bands (position, 4 bytes big-endian, and
--         check, 1 byte, each: dedupe.band_slot), "" when the item is not fingerprinted;
--       6 slot-check verdicts so far, JSON {record: {"distinct": bool, "why": text}}, a record
--         named "YYYYMMDD:number" as in the "verify" reply ({} on the first call;
--         pipeline/publish.py fills it from the "verify" replies);
--       7 routing, JSON {"version": routes version matched with, "names": [matched routes],
--         "marks": Keys.routed_marks_prefix, "bucket": MARK_BUCKET_CHARS}
-- Routes: a published item goes to each matched route's stream too; a copy goes to each of its
-- routes that its story (the kept item's id in Keys.routed_mark) has not reached yet, as an
-- item of the kept item's cluster. Routes matched with another version than KEYS[10]'s make
-- the script return {"routes_changed"} before anything is written: the caller reloads them.
-- Slot check (pipeline/align.py): a candidate the sketches call a copy and ARGV[6] has no
-- verdict for makes the script return {"verify", record, slot record, ...} before it writes
-- anything; the caller checks those records and calls again with their verdicts. The decision
-- itself stays in one script run, over every candidate there is at that moment: a copy
-- published by another worker between two calls is one more candidate to verify, never missed.
-- A day's records are packed into chunk strings, each created at its full size (it fits its
-- allocator size class and is never reallocated: one growing string per day would waste up to a
-- size class's step and copy tens of MB now and then), found through the day's ``where``.
-- Returns {"published", stream id} | {"duplicate_url", kept} | {"duplicate_content", kept}
--       | {"duplicate_near", kept, jaccard, containment, lead}
--       | {"verify", "YYYYMMDD:number", slot record, ...} | {"routes_changed"}
-- Numbers reach redis.call as strings: converting a Lua number costs more than the command.
local args = cmsgpack.unpack(ARGV[1])  -- the item's arguments by name (publish.PublishArgs)
-- The item's byte strings: signatures, fingerprint record, bands.
local sig, lead, my_record, my_bands = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local today, keep_days, prune_days = args.today, args.keep_days, args.prune_days
local item_field, content_field = args.item_field, args.content_field

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

local near = args.near
local prefix, index_ttl = args.index_prefix, args.index_ttl
local n, ln = args.shingles, args.lead_shingles
-- The window's days, today first, each with its code in the slots (dedupe.day_code).
local days, codes, day_of_code, code_of_day = {}, {}, {}, {}
for day, code in string.gmatch(args.days, '(%d+):(%d+)') do
  days[#days + 1] = day
  codes[#days] = tonumber(code)
  day_of_code[codes[#days]] = day
  code_of_day[day] = codes[#days]
end

local function estimate(matches, bits)
  local chance = 1 / 2 ^ bits
  return math.max(0, (matches / {{NUM_PERM}} - chance) / (1 - chance))
end
local function containment(j, a, b, of) return math.min(1, j * (a + b) / ((1 + j) * of)) end
-- Signatures compared as byte arrays (one string.byte call each): 2x faster than string.sub.
-- A record (dedupe.doc_record): the signature and the lead signature (SIG bytes each), two
-- 4-byte counts, the item id, the count of the lead's numbers and 4 bytes each, where a copy's
-- kept record is (4 bytes, zero in a published item's), the slot check's record after its
-- 2-byte length, the source. Sizes and 1-based positions come from pipeline/dedupe.py.
local SIG, COUNTS = {{SIGNATURE_BYTES}}, {{RECORD_COUNTS_AT}}
local ITEM_ID, NUMBERS = {{RECORD_ITEM_ID_AT}}, {{RECORD_NUMBERS_AT}}
local function kept_at_pos(rec)  -- a copy's kept record: day code (1 B), number (3 B); 0: none
  return NUMBERS + 1 + 4 * string.byte(rec, NUMBERS)
end
local function slot_record_at(rec)  -- position of the slot record's length
  return kept_at_pos(rec) + 4
end
local function slot_record(rec)
  local at = slot_record_at(rec)
  local hi, lo = string.byte(rec, at, at + 1)
  return string.sub(rec, at + 2, at + 1 + hi * 256 + lo)
end
local mine, my_lead  -- made on the first candidate's compare: most calls have none
local function compare(rec)
  if not mine then mine, my_lead = {string.byte(sig, 1, SIG)}, {string.byte(lead, 1, SIG)} end
  local theirs = {string.byte(rec, 1, 2 * SIG)}
  local cn, cln = struct.unpack('>I4>I4', string.sub(rec, COUNTS, COUNTS + 7))
  local m, mine_in, theirs_in = 0, 0, 0
  for i = 1, SIG do
    local t = theirs[i]
    if mine[i] == t then m = m + 1 end
    if my_lead[i] == t then mine_in = mine_in + 1 end  -- my lead in their text
    if theirs[SIG + i] == mine[i] then theirs_in = theirs_in + 1 end  -- theirs in mine
  end
  local j = estimate(m, 8)
  local c = containment(j, n, cn, math.min(n, cn))
  local l = math.min(containment(estimate(mine_in, 8), ln, cn, ln),
                     containment(estimate(theirs_in, 8), cln, n, cln))
  local at = slot_record_at(rec)
  local hi, lo = string.byte(rec, at, at + 1)
  local source = string.sub(rec, at + 2 + hi * 256 + lo)
  return j, c, l, string.sub(rec, ITEM_ID, NUMBERS - 1), source
end

-- The lead's numbers by the words around them (dedupe.lead_numbers / numbers_differ are the
-- reference): 4 bytes each (context hash, value byte) after their count at NUMBERS.
local function lead_numbers(rec)
  local by_context = {}
  for i = 0, (string.byte(rec, NUMBERS) or 0) - 1 do  -- no record: not fingerprinted
    local at = NUMBERS + 1 + 4 * i
    local c1, c2, c3, value = string.byte(rec, at, at + 3)
    local context = (c1 * 256 + c2) * 256 + c3
    by_context[context] = by_context[context] or {}
    by_context[context][value] = true
  end
  return by_context
end
local my_numbers = lead_numbers(my_record)
local function numbers_differ(rec)
  for context, values in pairs(lead_numbers(rec)) do
    local mine = my_numbers[context]
    if mine then
      local shared = false
      for value in pairs(values) do if mine[value] then shared = true; break end end
      if not shared then return true end
    end
  end
  return false
end

local chunk_bytes = args.chunk_bytes

-- The bands (dedupe.band_slot): position hashes, and check bytes already shifted above the
-- day code and the item number (dedupe.slot_value), so a slot value minus its check is below
-- CHECK_SPAN when they match.
local ITEM_SPAN, CHECK_SPAN = 16777216, 4294967296  -- 2^SLOT_ITEM_BITS, 2^(8 + 24)
local positions, checks = {}, {}
local band_bytes = {string.byte(my_bands, 1, -1)}
for i = 1, #band_bytes, 5 do
  local b1, b2, b3, b4 = band_bytes[i], band_bytes[i + 1], band_bytes[i + 2], band_bytes[i + 3]
  positions[#positions + 1] = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
  checks[#checks + 1] = band_bytes[i + 4] * CHECK_SPAN
end

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
-- strings with string.format('%d'): twice as fast as tostring's '%.14g' (~7 us a call).
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
-- allocator size classes, four per doubling (limits 7-9: min and max bytes, header slack).
local function table_slots(wanted)
  local base, step = args.table_min_bytes, 0
  while base * (4 + step) / 4 < args.table_max_bytes and (base * (4 + step) / 4 - args.string_slack) / 5 < wanted do
    if step == 3 then base, step = base * 2, 0 else step = step + 1 end
  end
  return math.floor((base * (4 + step) / 4 - args.string_slack) / 5)
end

-- Slots of the largest table (limits 8, a power of two like the smallest: in the series).
local largest = math.floor((args.table_max_bytes - args.string_slack) / 5)

local function save_tables()
  local listed = {}
  for _, t in ipairs(tables) do
    listed[#listed + 1] = t.number .. ':' .. t.slots .. ':' .. t.last
  end
  redis.call('SET', tables_key, table.concat(listed, ' '), 'EX', index_ttl)
end

-- Starts a table holding at least ``wanted`` slots, taking entries from now on. A small table
-- (up to limits 11: copy max bytes) that four times its size would do is copied into it four
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
-- the window (limits 5-6: load, max load) and keeps it and the list from expiring; an item that
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

if near then
  local seen, candidates = {}, {}
  for _, t in ipairs(tables) do
    local key = prefix .. 'slots:' .. t.number
    for i, value in ipairs(redis.call('BITFIELD_RO', key, unpack(slot_gets(t.slots)))) do
      local rest = value - checks[i]  -- the day code and item number if the check matches
      if rest > 0 and rest < CHECK_SPAN then
        local n = rest % ITEM_SPAN
        local day = day_of_code[(rest - n) / ITEM_SPAN]  -- nil: a day out of the window
        local id = day and n > 0 and day .. ':' .. n
        if id and not seen[id] then seen[id] = true; candidates[#candidates + 1] = {day, n} end
      end
    end
  end
  local verdicts = cjson.decode(ARGV[6])
  local unverified = {}
  -- A copy's record names its kept item's record: joining through a copy needs the slot check
  -- to pass against both (a cluster must not drift from story to story through its copies).
  local function kept_location(rec)
    local p = kept_at_pos(rec)
    local code, b1, b2, b3 = string.byte(rec, p, p + 3)
    local n = (b1 * 256 + b2) * 256 + b3
    local day = n > 0 and day_of_code[code]
    return day and {day, n} or nil
  end
  -- The records a candidate's verdict rests on, named by where they are ("day:number").
  local function to_check(location, rec)
    local named = {{location[1] .. ':' .. location[2], rec}}
    local kept_loc = kept_location(rec)
    local kept_rec = kept_loc and record(kept_loc[1], kept_loc[2])
    if kept_rec and #slot_record(kept_rec) > 0 then
      named[2] = {kept_loc[1] .. ':' .. kept_loc[2], kept_rec}
    end
    return named, kept_loc or location
  end
  -- Per cluster (kept id), the record most like the item among those the sketches call copies:
  -- the item joins a cluster through its closest member, so only that one is checked.
  local closest, clusters = {}, {}
  for k = 1, math.min(#candidates, args.max_candidates) do
    local rec = record(candidates[k][1], candidates[k][2])
    if rec then
      local j, c, l, kept, source = compare(rec)
      local dup = (j >= args.jaccard or (c >= args.containment and l >= args.lead))
        and not numbers_differ(rec)
      local known = closest[kept]
      if dup and not known then clusters[#clusters + 1] = kept end
      if dup and (not known or j > known.j) then
        closest[kept] = {j = j, c = c, l = l, source = source, rec = rec, at = candidates[k]}
      end
    end
  end
  local best, best_j, best_c, best_l, best_source, best_at, best_root = nil, -1, 0, 0, ''
  for _, kept in ipairs(clusters) do
    local near_one = closest[kept]
    local named, root = to_check(near_one.at, near_one.rec)
    local known, distinct = true, false
    for _, pair in ipairs(#slot_record(near_one.rec) > 0 and named or {}) do
      local verdict = verdicts[pair[1]]
      if not verdict then
        known = false
        unverified[#unverified + 1] = pair[1]
        unverified[#unverified + 1] = slot_record(pair[2])
      elseif verdict['distinct'] then
        distinct = true
      end
    end
    if known and not distinct and near_one.j > best_j then
      best, best_j, best_c, best_l = kept, near_one.j, near_one.c, near_one.l
      best_source, best_at, best_root = near_one.source, named[1][1], root
    end
  end
  if #unverified > 0 then return {'verify', unpack(unverified)} end
  if best then
    local sim = {jaccard = best_j, containment = best_c, lead = best_l}
    local why = verdicts[best_at] and verdicts[best_at]['why'] or nil
    record_duplicate(best, 'near_duplicate', sim, why)
    local cluster = args.cluster_prefix .. best
    local size = redis.call('ZINCRBY', KEYS[7], 1, best)
    if tonumber(size) == 1 then  -- first copy: the cluster starts with the kept item itself
      size = redis.call('ZINCRBY', KEYS[7], 1, best)
      redis.call('SADD', cluster .. ':sources', best_source)
    end
    redis.call('HSETNX', cluster, 'title', args.title)
    redis.call('SADD', cluster .. ':sources', args.source)
    -- Why each copy joined (Keys.cluster_copies): the last 100 copies, newest last.
    local copy = {id = args.id, source = args.source, title = args.title, similarity = sim,
                  alignment = why}
    redis.call('RPUSH', cluster .. ':copies', cjson.encode(copy))
    redis.call('LTRIM', cluster .. ':copies', '-100', '-1')
    redis.call('EXPIRE', cluster, index_ttl)
    redis.call('EXPIRE', cluster .. ':sources', index_ttl)
    redis.call('EXPIRE', cluster .. ':copies', index_ttl)
    -- The copy is indexed too, under the kept item's id and naming its record: a later copy
    -- closer to this one than to the kept item still joins the cluster.
    local p, n = kept_at_pos(my_record), best_root[2]
    local kept_at = string.char(code_of_day[best_root[1]], math.floor(n / 65536) % 256,
                                math.floor(n / 256) % 256, n % 256)
    index_record(string.sub(my_record, 1, ITEM_ID - 1) .. best
                 .. string.sub(my_record, NUMBERS, p - 1) .. kept_at .. string.sub(my_record, p + 4))
    return {'duplicate_near', best, tostring(best_j), tostring(best_c), tostring(best_l)}
  end
end

local sid = redis.call('XADD', KEYS[3], 'MAXLEN', '~', args.maxlen, '*', 'item', args.item)
route_item()
mark_put(KEYS[1], item_field, nil)
if args.dedupe_content then mark_put(KEYS[2], content_field, args.id) end
redis.call('HINCRBY', KEYS[5], '{{STAT_PUBLISHED}}', 1)
if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('HINCRBY', KEYS[6], 'items', 1) end
if near then index_record(my_record) end
return {'published', sid}
