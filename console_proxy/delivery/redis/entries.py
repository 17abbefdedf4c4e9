"""The Redis queue's stream entries and claimed batches, as Lua spliced into every script (scripts.py).

An entry is one accepted batch (docs/design.md, "Redis stream entries"): `t` its topic, `n` how many events,
`b` their JSON texts joined by a newline (compact JSON never holds a raw one). An entry an older version wrote
holds one event (`t`, `e`), and is read as a batch of one.

A claimed batch `P:batch:<batch_id>` records its owner, topic, event count `n` and items (`ids`): each a whole
entry (`<entry id>`) or a slice of one (`<entry id>/<first>/<last>`, events counted from 1), cut when an entry
holds more events than a consumer sends at once or the collector answered 413. `P:batch_of` maps an entry to
the batches holding a part of it (space-separated); an entry is acknowledged and deleted when the last of them
is done. All batches holding parts of one entry have the same owner, so a takeover moves them together. The rest
of a cut entry waits in its owner's list under a provisional name (`~<entry id>/<first>`) until it is claimed
and named with a new batch_id.
"""

from __future__ import annotations

# KEYS: stream, counters, batch_of, dead. ARGV[1]: key prefix, ARGV[2]: group.
HEADER = """
local S, C, BO, D = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local P, G = ARGV[1], ARGV[2]
local function field(f, name)
  for i = 1, #f, 2 do if f[i] == name then return f[i + 1] end end
  return nil
end
local function split(s)
  local out = {}
  for w in string.gmatch(s, '%S+') do out[#out + 1] = w end
  return out
end
-- How many events an entry's fields hold: `n` of a batch entry, one for an older version's entry.
local function events_of(f)
  return tonumber(field(f, 'n') or 1)
end
local function hints(...)
  local c = redis.call('HMGET', C, 'queued', 'unclaimed')
  return {tonumber(c[1] or 0), tonumber(c[2] or 0), ...}
end
-- hints(...) with the items of `t` after `...`, without unpacking a long batch onto the Lua stack.
local function hints_with(t, ...)
  local out = hints(...)
  for _, v in ipairs(t) do out[#out + 1] = v end
  return out
end
-- One command per 500 items: unpacking a long batch would overflow Lua's stack.
local function call_chunked(prefix, items, suffix)
  for i = 1, #items, 500 do
    local args = {}
    for _, a in ipairs(prefix) do args[#args + 1] = a end
    for j = i, math.min(i + 499, #items) do args[#args + 1] = items[j] end
    if suffix then args[#args + 1] = suffix end
    redis.call(unpack(args))
  end
end
local function claim_ids(me, ids)
  call_chunked({'XCLAIM', S, G, me, 0}, ids, 'JUSTID')
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Entries read in this script, by id (false: not in the stream).
local cache = {}
local function entry(id)
  local en = cache[id]
  if en == nil then
    local r = redis.call('XRANGE', S, id, id)
    en = false
    if #r > 0 then en = {f = r[1][2]} end
    cache[id] = en
  end
  return en or nil
end
local function texts_of(en)
  if en.texts == nil then
    local e = field(en.f, 'e')
    en.texts = {e}
    if e == nil then
      en.texts = {}
      for text in string.gmatch(field(en.f, 'b'), '[^\\n]+') do en.texts[#en.texts + 1] = text end
    end
  end
  return en.texts
end
-- Events `a`..`z` of an entry (all of it when `a` is nil): their texts joined by newlines, how many, their bytes.
local function piece(en, a, z)
  local n = events_of(en.f)
  if a == nil then
    local e = field(en.f, 'e')
    if e then return e, 1, #e end
    local b = field(en.f, 'b')
    return b, n, #b - n + 1
  end
  local texts, size = texts_of(en), 0
  for i = a, z do size = size + #texts[i] end
  return table.concat(texts, '\\n', a, z), z - a + 1, size
end
-- An item of a batch: an entry id, and the slice's first and last event (nil for the whole entry).
local function item(s)
  local id, a, z = string.match(s, '^([^/]+)/(%d+)/(%d+)$')
  if id then return id, tonumber(a), tonumber(z) end
  return s, nil, nil
end
-- The batch's record and what of it is still in the stream: its items and entries (`ids`), the live ones, their
-- texts as pieces (one per live item), and how many events and bytes they hold.
local function load(bid)
  local rec = redis.call('HMGET', P .. 'batch:' .. bid, 'ids', 'topic', 'owner')
  if not rec[1] then return nil end
  local b = {items = split(rec[1]), ids = {}, live = {}, entries = {}, pieces = {}, n = 0, size = 0,
             topic = rec[2], owner = rec[3]}
  local seen = {}
  for _, s in ipairs(b.items) do
    local id, a, z = item(s)
    local en = entry(id)
    if not seen[id] then
      seen[id] = true
      b.ids[#b.ids + 1] = id
      if en then b.entries[#b.entries + 1] = id end
    end
    if en then
      local text, k, size = piece(en, a, z)
      b.live[#b.live + 1] = s
      b.pieces[#b.pieces + 1] = text
      b.n, b.size = b.n + k, b.size + size
    end
  end
  return b
end
local function holders(id)
  return split(redis.call('HGET', BO, id) or '')
end
-- Entry `id` is held by the batches it was held by, less `gone`, and `added` (each once).
local function hold(id, gone, added)
  local out, seen = {}, {}
  for _, x in ipairs(holders(id)) do
    if x ~= gone and not seen[x] then out[#out + 1] = x; seen[x] = true end
  end
  for _, x in ipairs(added) do
    if not seen[x] then out[#out + 1] = x; seen[x] = true end
  end
  if #out == 0 then redis.call('HDEL', BO, id) else redis.call('HSET', BO, id, table.concat(out, ' ')) end
  return #out
end
local function record(bid, me, topic, items, n)
  redis.call('HSET', P .. 'batch:' .. bid, 'owner', me, 'topic', topic, 'ids', table.concat(items, ' '), 'n', n)
end
-- The batch is done or gone: its record goes, and each of its entries no other live batch holds a part of is
-- acknowledged and deleted.
local function release(bid, b)
  for _, id in ipairs(b.ids) do
    local rest = {}
    for _, x in ipairs(holders(id)) do
      if x ~= bid and redis.call('EXISTS', P .. 'batch:' .. x) == 1 then rest[#rest + 1] = x end
    end
    if #rest == 0 then
      redis.call('HDEL', BO, id)
      redis.call('XACK', S, G, id)
      redis.call('XDEL', S, id)
      cache[id] = false
    else
      redis.call('HSET', BO, id, table.concat(rest, ' '))
    end
  end
  redis.call('DEL', P .. 'batch:' .. bid)
  if b.owner then redis.call('LREM', P .. 'held:' .. b.owner, 0, bid) end
end
-- Events `a`..`z` of entry `id`: the first `maxn` become batch `bid`, the rest a provisional batch after it in
-- `me`'s list (before `before`, else last); replaces `was` among the entry's holders.
local function cut(id, a, z, me, topic, bid, maxn, was)
  local last = math.min(z, a + maxn - 1)
  local added = {bid}
  record(bid, me, topic, {id .. '/' .. a .. '/' .. last}, last - a + 1)
  if last < z then
    local rest = '~' .. id .. '/' .. (last + 1)
    record(rest, me, topic, {id .. '/' .. (last + 1) .. '/' .. z}, z - last)
    added[2] = rest
  end
  hold(id, was, added)
  return added
end
-- Events held by `me`'s batches (a hint for the forwarder: sent before any new one).
local function held_events(me)
  local n = 0
  for _, bid in ipairs(redis.call('LRANGE', P .. 'held:' .. me, 0, -1)) do
    local k = redis.call('HGET', P .. 'batch:' .. bid, 'n')
    if not k then
      local b = load(bid)  -- a batch an older version claimed: no count in its record
      k = b and b.n or 0
    end
    n = n + tonumber(k)
  end
  return n
end
"""
