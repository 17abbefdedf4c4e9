"""The Redis queue's Lua scripts: each change of the stream and its counters happens in one atomic script.

Keys (under a prefix P): `P:stream` holds one entry per event (`t` topic, `e` the event's JSON), read by the
consumer group; `P:counters` is a hash (accepted, forwarded, dead_lettered, expired, queued, bytes, unclaimed,
last_delivery_at, reclaimed); `P:batch_of` maps a claimed entry to its batch; `P:batch:<batch_id>` records a
claimed batch (owner, topic, entry ids); `P:held:<consumer>` lists a consumer's batches; `P:dead` is the
dead-letter stream. Every script answers `{queued, unclaimed, ...}` so a process refreshes its hints for free.
"""

from __future__ import annotations

from console_proxy.delivery.redis.accounts import EPOCH_BODY
from console_proxy.delivery.redis.accounts import LUA as _ACCOUNTS

# KEYS: stream, counters, batch_of, dead. ARGV[1]: key prefix, ARGV[2]: group.
_HEADER = (
    """
local S, C, BO, D = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local P, G = ARGV[1], ARGV[2]
local function field(f, name)
  for i = 1, #f, 2 do if f[i] == name then return f[i + 1] end end
  return nil
end
local function entry(id)
  local r = redis.call('XRANGE', S, id, id)
  if #r == 0 then return nil, nil end
  return field(r[1][2], 't'), field(r[1][2], 'e')
end
local function split(s)
  local out = {}
  for w in string.gmatch(s, '%S+') do out[#out + 1] = w end
  return out
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
-- The batch's record, its entries still in the stream and their event JSON.
local function load(bid)
  local rec = redis.call('HMGET', P .. 'batch:' .. bid, 'ids', 'topic', 'owner')
  if not rec[1] then return nil end
  local ids, live, texts = split(rec[1]), {}, {}
  for _, id in ipairs(ids) do
    local _, e = entry(id)
    if e then live[#live + 1] = id; texts[#texts + 1] = e end
  end
  return {ids = ids, live = live, texts = texts, topic = rec[2], owner = rec[3]}
end
local function forget(bid, ids, owner)
  redis.call('DEL', P .. 'batch:' .. bid)
  call_chunked({'HDEL', BO}, ids)
  if owner then redis.call('LREM', P .. 'held:' .. owner, 0, bid) end
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""
    + _ACCOUNTS
)

# The newest events kept for /_telemetry/v1/recent, whichever process answers it (`P:recent`, a capped list).
RECENT_EVENTS = 100

# ARGV: P, G, max_events, max_bytes, topic, event JSON... -> {queued, unclaimed, 1 taken | 0 full}. Each event
# also joins P:recent as `{"topic": ..., ...event}`, the newest RECENT_EVENTS kept.
PUT = (
    _HEADER
    + """
local first = 6
local n, size = #ARGV - first + 1, 0
for i = first, #ARGV do size = size + #ARGV[i] end
local c = redis.call('HMGET', C, 'queued', 'bytes')
if tonumber(c[1] or 0) + n > tonumber(ARGV[3]) or tonumber(c[2] or 0) + size > tonumber(ARGV[4]) then
  return hints(0)
end
for i = first, #ARGV do redis.call('XADD', S, '*', 't', ARGV[5], 'e', ARGV[i]) end
redis.call('HINCRBY', C, 'accepted', n)
redis.call('HINCRBY', C, 'queued', n)
redis.call('HINCRBY', C, 'bytes', size)
redis.call('HINCRBY', C, 'unclaimed', n)
book(ARGV[5], 'accepted', n)
book(ARGV[5], 'queued', n)
local shown = {}
for i = math.max(first, #ARGV - RECENT + 1), #ARGV do
  shown[#shown + 1] = '{"topic":"' .. ARGV[5] .. '",' .. string.sub(ARGV[i], 2)
end
call_chunked({'RPUSH', P .. 'recent'}, shown)
redis.call('LTRIM', P .. 'recent', 0 - RECENT, -1)
return hints(1)
""".replace("RECENT", str(RECENT_EVENTS))
)

# A batch this consumer already holds (a retry), else a batch a consumer idle for the lease held (it keeps its
# batch_id and is sent whole), else new entries of one topic under the new batch_id: {batch_id, topic, texts}.
_CLAIM_FUNCTION = """
local function claim(me, maxn, lease, newid)
  local held = P .. 'held:' .. me
  while true do
    local bid = redis.call('LINDEX', held, 0)
    if not bid then break end
    local b = load(bid)
    if b == nil then
      redis.call('LPOP', held)
    elseif #b.live == 0 then
      forget(bid, b.ids, me)
    else
      claim_ids(me, b.live)
      return {bid, b.topic, b.texts}
    end
  end
  local cursor = '0-0'
  for _ = 1, 1000 do
    local r = redis.call('XAUTOCLAIM', S, G, me, lease, cursor, 'COUNT', 1, 'JUSTID')
    cursor = r[1]
    local id = r[2][1]
    if id then
      local bid = redis.call('HGET', BO, id)
      local b = bid and load(bid)
      if b and #b.live > 0 then
        if b.owner and b.owner ~= me then redis.call('LREM', P .. 'held:' .. b.owner, 0, bid) end
        claim_ids(me, b.live)
        redis.call('HSET', P .. 'batch:' .. bid, 'owner', me)
        redis.call('LPUSH', held, bid)
        redis.call('HINCRBY', C, 'reclaimed', 1)
        return {bid, b.topic, b.texts}
      end
      -- An entry without a batch record cannot happen (both are written here); make it a batch of its own.
      local t, e = entry(id)
      if e then
        redis.call('HSET', P .. 'batch:' .. newid, 'owner', me, 'topic', t, 'ids', id)
        redis.call('HSET', BO, id, newid)
        redis.call('LPUSH', held, newid)
        return {newid, t, {e}}
      end
    end
    if cursor == '0-0' then break end
  end
  local last = '0-0'
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', S)) do
    if field(g, 'name') == G then last = field(g, 'last-delivered-id') end
  end
  local peek = redis.call('XRANGE', S, '(' .. last, '+', 'COUNT', maxn)
  if #peek == 0 then
    redis.call('HSET', C, 'unclaimed', 0)
    return nil
  end
  local topic, k = field(peek[1][2], 't'), 0
  for _, en in ipairs(peek) do
    if field(en[2], 't') ~= topic then break end
    k = k + 1
  end
  local got = redis.call('XREADGROUP', 'GROUP', G, me, 'COUNT', k, 'STREAMS', S, '>')
  local ids, texts, pairs_ = {}, {}, {}
  for _, en in ipairs(got[1][2]) do
    ids[#ids + 1] = en[1]
    texts[#texts + 1] = field(en[2], 'e')
    pairs_[#pairs_ + 1] = en[1]
    pairs_[#pairs_ + 1] = newid
  end
  redis.call('HSET', P .. 'batch:' .. newid, 'owner', me, 'topic', topic, 'ids', table.concat(ids, ' '))
  call_chunked({'HSET', BO}, pairs_)
  redis.call('RPUSH', held, newid)
  redis.call('HINCRBY', C, 'unclaimed', 0 - #ids)
  return {newid, topic, texts}
end
"""

# ARGV: P, G, consumer, max_events, lease_ms, new batch_id -> {queued, unclaimed[, batch_id, topic, JSON...]}
CLAIM = (
    _HEADER
    + _CLAIM_FUNCTION
    + """
local b = claim(ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6])
if b == nil then return hints() end
return hints_with(b[3], b[1], b[2])
"""
)

_FINISH_FUNCTION = """
local function finish(bid, now, status, counts)
  local b = load(bid)
  if b == nil then return 0 end
  local n, size = 0, 0
  for i, id in ipairs(b.live) do
    if redis.call('XACK', S, G, id) == 1 then
      n = n + 1
      size = size + #b.texts[i]
      if status ~= 0 then
        redis.call('XADD', D, '*', 'batch_id', bid, 'status', status, 't', b.topic, 'e', b.texts[i], 'at', now)
      end
    end
    redis.call('XDEL', S, id)
  end
  forget(bid, b.ids, b.owner)
  redis.call('HINCRBY', C, status == 0 and 'forwarded' or 'dead_lettered', n)
  redis.call('HINCRBY', C, 'queued', 0 - n)
  redis.call('HINCRBY', C, 'bytes', 0 - size)
  if status == 0 and n > 0 then redis.call('HSET', C, 'last_delivery_at', now) end
  book_finished(b.topic, n, status, counts)
  return n
end
"""

FINISH = (
    _HEADER
    + _FINISH_FUNCTION
    + """
return hints(finish(ARGV[3], ARGV[4], tonumber(ARGV[5]), answer_at(6)))
"""
)

# ARGV: P, G, batch_id, unix time, consumer, max_events, lease_ms, new batch_id, the collector's stored, duplicates,
# rejected ('' for none) -> {queued, unclaimed, n[, batch_id,
# topic, JSON...]}: FINISH with status 0, then, when a full batch is waiting, CLAIM in the same script (one round
# trip and one AOF fsync fewer per batch while a backlog drains).
ACK_NEXT = (
    _HEADER
    + _FINISH_FUNCTION
    + _CLAIM_FUNCTION
    + """
local n = finish(ARGV[3], ARGV[4], 0, answer_at(9))
local maxn = tonumber(ARGV[6])
if tonumber(redis.call('HGET', C, 'unclaimed') or 0) < maxn then return hints(n) end
local b = claim(ARGV[5], maxn, ARGV[7], ARGV[8])
if b == nil then return hints(n) end
return hints_with(b[3], n, b[1], b[2])
"""
)

EXPIRE = (
    _HEADER
    + """
local cutoff = now_ms() - tonumber(ARGV[3])
if cutoff <= 0 then return hints(0, 0) end
local old = redis.call('XRANGE', S, '-', '(' .. cutoff .. '-0', 'COUNT', tonumber(ARGV[4]))
local n, size, unclaimed = 0, 0, 0
for _, en in ipairs(old) do
  local id = en[1]
  if redis.call('XACK', S, G, id) == 0 then unclaimed = unclaimed + 1 end
  redis.call('XDEL', S, id)
  redis.call('HDEL', BO, id)
  n = n + 1
  size = size + #field(en[2], 'e')
end
redis.call('HINCRBY', C, 'expired', n)
redis.call('HINCRBY', C, 'queued', 0 - n)
redis.call('HINCRBY', C, 'bytes', 0 - size)
redis.call('HINCRBY', C, 'unclaimed', 0 - unclaimed)
for t, k in pairs(by_topic(old)) do book(t, 'expired', k); book(t, 'queued', 0 - k) end
return hints(n, #old == tonumber(ARGV[4]) and 1 or 0)
"""
)

# ARGV: P, G, consumer, lease_ms -> {queued, unclaimed, held events}. Registers this consumer in the group (so a
# process is listed from its start, before its first claim) with a heartbeat `P:alive:<consumer>` that lives for
# the lease; removes every consumer whose heartbeat is gone and that holds nothing (a dead process: what it held
# is taken over after the lease, and it leaves at the next poll after that). Resets the idle time of this
# consumer's batches, so a live consumer waiting out a long backoff keeps them past the lease.
TOUCH = (
    _HEADER
    + """
local me = ARGV[3]
redis.call('XGROUP', 'CREATECONSUMER', S, G, me)
redis.call('SET', P .. 'alive:' .. me, '1', 'PX', tonumber(ARGV[4]))
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', S, G)) do
  local name = field(c, 'name')
  if name ~= me and tonumber(field(c, 'pending')) == 0 and redis.call('EXISTS', P .. 'alive:' .. name) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', S, G, name)
    redis.call('DEL', P .. 'held:' .. name)
  end
end
local n = 0
for _, bid in ipairs(redis.call('LRANGE', P .. 'held:' .. me, 0, -1)) do
  local b = load(bid)
  if b and b.owner == me then
    claim_ids(me, b.live)
    n = n + #b.live
  end
end
return hints(n)
"""
)

# ARGV: P, G, batch_id, first half's batch_id, second half's batch_id -> {queued, unclaimed, halves}. The
# collector answered 413: the batch becomes two, in the same place at the head of its owner's list.
SPLIT = (
    _HEADER
    + """
local bid, first, second = ARGV[3], ARGV[4], ARGV[5]
local b = load(bid)
if b == nil or #b.live < 2 then return hints(0) end
local half = math.floor((#b.live + 1) / 2)
local parts = {{first, {}}, {second, {}}}
for i, id in ipairs(b.live) do
  local part = parts[i <= half and 1 or 2]
  part[2][#part[2] + 1] = id
  redis.call('HSET', BO, id, part[1])
end
local held = P .. 'held:' .. b.owner
redis.call('LREM', held, 0, bid)
for i = 2, 1, -1 do
  local ids = table.concat(parts[i][2], ' ')
  redis.call('HSET', P .. 'batch:' .. parts[i][1], 'owner', b.owner, 'topic', b.topic, 'ids', ids)
  redis.call('LPUSH', held, parts[i][1])
end
redis.call('DEL', P .. 'batch:' .. bid)
return hints(2)
"""
)

# ARGV: P, G, replay (1: back into the stream; 0: purge) -> {queued, unclaimed, n}. A replayed event goes back
# as new, with its event id; the dead-lettered counter goes down by as many, so the invariant holds.
DEAD_LETTERS = (
    _HEADER
    + """
local replay = ARGV[3] == '1'
local rows = redis.call('XRANGE', D, '-', '+')
local size = 0
for _, en in ipairs(rows) do
  local e = field(en[2], 'e')
  if replay then
    redis.call('XADD', S, '*', 't', field(en[2], 't'), 'e', e)
    size = size + #e
  end
end
redis.call('DEL', D)
if replay and #rows > 0 then
  redis.call('HINCRBY', C, 'dead_lettered', 0 - #rows)
  redis.call('HINCRBY', C, 'queued', #rows)
  redis.call('HINCRBY', C, 'bytes', size)
  redis.call('HINCRBY', C, 'unclaimed', #rows)
  for t, k in pairs(by_topic(rows)) do book(t, 'dead_lettered', 0 - k); book(t, 'queued', k) end
end
return hints(#rows)
"""
)

# ARGV: P, G, consumer -> {queued, unclaimed, 1 left | 0 stays}. A process that stops leaves the group at once
# unless it still holds entries (then it stays listed until another takes them over after the lease).
LEAVE = (
    _HEADER
    + """
local me = ARGV[3]
redis.call('DEL', P .. 'alive:' .. me)
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', S, G)) do
  if field(c, 'name') == me and tonumber(field(c, 'pending')) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', S, G, me)
    return hints(1)
  end
end
return hints(0)
"""
)

# The queue's epoch, and the accounts restored with it (accounts.EPOCH_BODY).
EPOCH = _HEADER + EPOCH_BODY
