"""The Redis queue's claim, as Lua spliced into the scripts that claim (CLAIM, ACK_NEXT): which batch a consumer
sends next. It uses the helpers of entries.py (docs/design.md, "Redis stream entries").
"""

from __future__ import annotations

# claim(me, maxn, lease, newid) -> batch_id, batch (entries.load) or nil: a batch this consumer already holds (a
# retry, or the rest of a cut entry, named `newid`), else the batches a consumer idle for the lease held (they keep
# their batch_ids and are sent whole), else new entries of one topic, at most `maxn` events, as batch `newid`.
CLAIM_FUNCTION = """
local function named(me, maxn, newid)
  local held = P .. 'held:' .. me
  while true do
    local bid = redis.call('LINDEX', held, 0)
    if not bid then return nil end
    local b = load(bid)
    if b == nil then
      redis.call('LPOP', held)
    elseif #b.live == 0 then
      release(bid, b)
    else
      if string.sub(bid, 1, 1) == '~' then
        local id, a, z = item(b.live[1])
        redis.call('LPOP', held)
        redis.call('DEL', P .. 'batch:' .. bid)
        local made = cut(id, a, z, me, b.topic, newid, maxn, bid)
        for i = #made, 1, -1 do redis.call('LPUSH', held, made[i]) end
        bid, b = newid, load(newid)
      end
      claim_ids(me, b.entries)
      return bid, b
    end
  end
end
-- The live batches among `first` and every batch holding a part of one of their entries: all this consumer's,
-- at the head of its list in that order.
local function take_over(first, me)
  local todo, seen, order = {}, {}, {}
  for _, x in ipairs(first) do
    if not seen[x] then seen[x] = true; todo[#todo + 1] = x end
  end
  local i = 1
  while i <= #todo do
    local x = todo[i]
    i = i + 1
    local b = load(x)
    if b and #b.live > 0 and b.owner ~= me then
      if b.owner then redis.call('LREM', P .. 'held:' .. b.owner, 0, x) end
      redis.call('HSET', P .. 'batch:' .. x, 'owner', me)
      claim_ids(me, b.entries)
      order[#order + 1] = x
      for _, id in ipairs(b.ids) do
        for _, y in ipairs(holders(id)) do
          if not seen[y] then seen[y] = true; todo[#todo + 1] = y end
        end
      end
    end
  end
  for j = #order, 1, -1 do redis.call('LPUSH', P .. 'held:' .. me, order[j]) end
  return #order
end
-- Entries `ids` (claimed by `me`, `total` events of `topic`) as batch `newid`, cut when one entry holds too many.
local function start(me, ids, topic, total, newid, maxn)
  local made = {newid}
  if total > maxn then
    made = cut(ids[1], 1, total, me, topic, newid, maxn, nil)
  else
    record(newid, me, topic, ids, total)
    local pairs_ = {}
    for _, id in ipairs(ids) do pairs_[#pairs_ + 1] = id; pairs_[#pairs_ + 1] = newid end
    call_chunked({'HSET', BO}, pairs_)
  end
  call_chunked({'RPUSH', P .. 'held:' .. me}, made)
  return newid, load(newid)
end
local function claim(me, maxn, lease, newid)
  local bid, b = named(me, maxn, newid)
  if bid then return bid, b end
  local cursor = '0-0'
  for _ = 1, 1000 do
    local r = redis.call('XAUTOCLAIM', S, G, me, lease, cursor, 'COUNT', 1, 'JUSTID')
    cursor = r[1]
    local id = r[2][1]
    if id then
      local taken = take_over(holders(id), me)
      bid, b = named(me, maxn, newid)
      if bid then
        if taken > 0 then redis.call('HINCRBY', C, 'reclaimed', 1) end
        return bid, b
      end
      -- An entry without a batch cannot happen (both are written here); make it a batch of its own.
      local en = entry(id)
      if en then
        redis.call('HDEL', BO, id)
        return start(me, {id}, field(en.f, 't'), events_of(en.f), newid, maxn)
      end
    end
    if cursor == '0-0' then break end
  end
  local last = '0-0'
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', S)) do
    if field(g, 'name') == G then last = field(g, 'last-delivered-id') end
  end
  -- The next entries (each a whole batch), one, then twice as many each time: as many as fill `maxn` events of
  -- one topic, read at most about twice.
  local topic, k, total, from, done, step = nil, 0, 0, '(' .. last, false, 1
  while not done do
    local want = math.min(maxn - total, step)
    step = step * 2
    local peek = redis.call('XRANGE', S, from, '+', 'COUNT', want)
    for _, en in ipairs(peek) do
      local m = events_of(en[2])
      topic = topic or field(en[2], 't')
      if field(en[2], 't') ~= topic or (k > 0 and total + m > maxn) then done = true; break end
      k, total, from = k + 1, total + m, '(' .. en[1]
    end
    done = done or #peek < want or total >= maxn
  end
  if k == 0 then
    redis.call('HSET', C, 'unclaimed', 0)
    return nil
  end
  local got = redis.call('XREADGROUP', 'GROUP', G, me, 'COUNT', k, 'STREAMS', S, '>')
  local ids = {}
  for _, en in ipairs(got[1][2]) do
    ids[#ids + 1] = en[1]
    cache[en[1]] = {f = en[2]}
  end
  redis.call('HINCRBY', C, 'unclaimed', 0 - total)
  return start(me, ids, topic, total, newid, maxn)
end
"""
