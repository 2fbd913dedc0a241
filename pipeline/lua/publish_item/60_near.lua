-- Steps 4-6: candidates from the slot tables, verified, the slot check's verdicts asked
-- for, and the best match makes the item a copy.
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
