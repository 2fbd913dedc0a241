-- Steps 4-5, what a candidate is compared with: the window's days, the item's bands, and
-- the fingerprint records (resemblance, containment, leads, lead numbers).
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
