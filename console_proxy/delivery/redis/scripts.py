"""The Redis queue's Lua scripts: each change of the stream and its counters happens in one atomic script.

Keys (under a prefix P): `P:stream` holds one entry per accepted batch (entries.py says their shape and that of
a claimed batch), read by the consumer group; `P:counters` is a hash (accepted, forwarded, dead_lettered,
expired, queued and bytes counted in events, unclaimed, last_delivery_at, reclaimed); `P:batch_of` maps a
claimed entry to its batches; `P:batch:<batch_id>` records a claimed batch; `P:held:<consumer>` lists a
consumer's batches; `P:dead` is the dead-letter stream, one entry per event. Every script answers
`{queued, unclaimed, ...}` so a process refreshes its hints for free.
"""

from __future__ import annotations

from console_proxy.delivery.redis.accounts import EPOCH_BODY
from console_proxy.delivery.redis.accounts import LUA as _ACCOUNTS
from console_proxy.delivery.redis.budget import LUA as _BUDGET
from console_proxy.delivery.redis.claims import CLAIM_FUNCTION as _CLAIM_FUNCTION
from console_proxy.delivery.redis.entries import HEADER

_HEADER = HEADER + _ACCOUNTS

# The newest events kept for /_telemetry/v1/recent, whichever process answers it (`P:recent`, a capped list).
RECENT_EVENTS = 100

# ARGV: P, G, max_events, max_bytes, topic, the budget's limit, window (s) and cost ('' for no budget), event
# JSON... and KEYS[5], KEYS[6]: the budget's previous and current window -> {queued, unclaimed, 1 taken | 0 full |
# -1 over budget}. The budget is taken first (and stays taken when the queue is full: refusing is work too);
# the events become one entry; each also joins P:recent as `{"topic": ..., ...event}`, the newest RECENT_EVENTS
# kept.
PUT = (
    _HEADER
    + _BUDGET
    + """
local first = 9
if ARGV[6] ~= '' and not spend(KEYS[5], KEYS[6], tonumber(ARGV[6]), tonumber(ARGV[7]) * 1000, tonumber(ARGV[8])) then
  return hints(-1)
end
local n, size = #ARGV - first + 1, 0
for i = first, #ARGV do size = size + #ARGV[i] end
local c = redis.call('HMGET', C, 'queued', 'bytes')
if tonumber(c[1] or 0) + n > tonumber(ARGV[3]) or tonumber(c[2] or 0) + size > tonumber(ARGV[4]) then
  return hints(0)
end
redis.call('XADD', S, '*', 't', ARGV[5], 'n', n, 'b', table.concat(ARGV, '\\n', first, #ARGV))
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

# ARGV: P, G, consumer, max_events, lease_ms, new batch_id -> {queued, unclaimed[, events held, batch_id, topic,
# events, pieces...]}: each piece is events' JSON joined by newlines.
CLAIM = (
    _HEADER
    + _CLAIM_FUNCTION
    + """
local bid, b = claim(ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6])
if bid == nil then return hints() end
return hints_with(b.pieces, held_events(ARGV[3]), bid, b.topic, b.n)
"""
)

_FINISH_FUNCTION = """
local function finish(bid, now, status, counts)
  local b = load(bid)
  if b == nil then return 0 end
  if status ~= 0 then
    for _, p in ipairs(b.pieces) do
      for e in string.gmatch(p, '[^\\n]+') do
        redis.call('XADD', D, '*', 'batch_id', bid, 'status', status, 't', b.topic, 'e', e, 'at', now)
      end
    end
  end
  release(bid, b)
  redis.call('HINCRBY', C, status == 0 and 'forwarded' or 'dead_lettered', b.n)
  redis.call('HINCRBY', C, 'queued', 0 - b.n)
  redis.call('HINCRBY', C, 'bytes', 0 - b.size)
  if status == 0 and b.n > 0 then redis.call('HSET', C, 'last_delivery_at', now) end
  book_finished(b.topic, b.n, status, counts)
  return b.n
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
# rejected ('' for none) -> {queued, unclaimed, n[, events held, batch_id, topic, events, pieces...]}: FINISH with
# status 0, then, when a full batch or one this consumer holds is waiting, CLAIM in the same script (one round trip
# and one AOF fsync fewer per batch while a backlog drains).
ACK_NEXT = (
    _HEADER
    + _FINISH_FUNCTION
    + _CLAIM_FUNCTION
    + """
local n = finish(ARGV[3], ARGV[4], 0, answer_at(9))
local me, maxn = ARGV[5], tonumber(ARGV[6])
if tonumber(redis.call('HGET', C, 'unclaimed') or 0) < maxn and redis.call('LLEN', P .. 'held:' .. me) == 0 then
  return hints(n)
end
local bid, b = claim(me, maxn, ARGV[7], ARGV[8])
if bid == nil then return hints(n) end
return hints_with(b.pieces, n, held_events(me), bid, b.topic, b.n)
"""
)

# ARGV: P, G, max age ms, most entries -> {queued, unclaimed, events expired, 1 more | 0 done}. An entry's events
# still queued: all of it, or the parts its batches hold (some of a cut entry may be delivered already).
EXPIRE = (
    _HEADER
    + """
local function left(id, en)
  local hs = holders(id)
  if #hs == 0 then
    local _, k, size = piece(en)
    return k, size
  end
  local n, size = 0, 0
  for _, x in ipairs(hs) do
    for _, s in ipairs(split(redis.call('HGET', P .. 'batch:' .. x, 'ids') or '')) do
      local eid, a, z = item(s)
      if eid == id then
        local _, k, bytes = piece(en, a, z)
        n, size = n + k, size + bytes
      end
    end
  end
  return n, size
end
local cutoff = now_ms() - tonumber(ARGV[3])
if cutoff <= 0 then return hints(0, 0) end
local old = redis.call('XRANGE', S, '-', '(' .. cutoff .. '-0', 'COUNT', tonumber(ARGV[4]))
local n, size, unclaimed, topics = 0, 0, 0, {}
for _, en in ipairs(old) do
  local id, t = en[1], field(en[2], 't')
  local k, bytes = left(id, {f = en[2]})
  if redis.call('XACK', S, G, id) == 0 then unclaimed = unclaimed + k end
  redis.call('XDEL', S, id)
  redis.call('HDEL', BO, id)
  n, size = n + k, size + bytes
  topics[t] = (topics[t] or 0) + k
end
redis.call('HINCRBY', C, 'expired', n)
redis.call('HINCRBY', C, 'queued', 0 - n)
redis.call('HINCRBY', C, 'bytes', 0 - size)
redis.call('HINCRBY', C, 'unclaimed', 0 - unclaimed)
for t, k in pairs(topics) do book(t, 'expired', k); book(t, 'queued', 0 - k) end
return hints(n, #old == tonumber(ARGV[4]) and 1 or 0)
"""
)

# ARGV: P, G, consumer, lease_ms -> {queued, unclaimed, held events, older consumers...}. Registers this consumer
# in the group (so a process is listed from its start, before its first claim) with a heartbeat
# `P:alive:<consumer>` that lives for the lease (`2`: one batch per entry; an older version's heartbeat is `1`,
# and it is named in the answer, as it cannot read these entries); removes every consumer whose heartbeat is gone
# and that holds nothing (a dead process: what it held is taken over after the lease, and it leaves at the next
# poll after that). Resets the idle time of this consumer's entries, so a live consumer waiting out a long
# backoff keeps them past the lease.
TOUCH = (
    _HEADER
    + """
local me = ARGV[3]
redis.call('XGROUP', 'CREATECONSUMER', S, G, me)
redis.call('SET', P .. 'alive:' .. me, '2', 'PX', tonumber(ARGV[4]))
local older = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', S, G)) do
  local name = field(c, 'name')
  local alive = name ~= me and redis.call('GET', P .. 'alive:' .. name)
  if alive == '1' then older[#older + 1] = name end
  if name ~= me and tonumber(field(c, 'pending')) == 0 and not alive then
    redis.call('XGROUP', 'DELCONSUMER', S, G, name)
    redis.call('DEL', P .. 'held:' .. name)
  end
end
local n = 0
for _, bid in ipairs(redis.call('LRANGE', P .. 'held:' .. me, 0, -1)) do
  local b = load(bid)
  if b and b.owner == me then
    claim_ids(me, b.entries)
    n = n + b.n
  end
end
return hints_with(older, n)
"""
)

# ARGV: P, G, batch_id, first half's batch_id, second half's batch_id -> {queued, unclaimed, halves}. The
# collector answered 413: the batch becomes two of half its events each (an entry in the middle is cut), in the
# same place at the head of its owner's list.
SPLIT = (
    _HEADER
    + """
local bid = ARGV[3]
local b = load(bid)
if b == nil or b.n < 2 then return hints(0) end
local half = math.floor((b.n + 1) / 2)
local parts = {{bid = ARGV[4], items = {}, n = 0, of = {}}, {bid = ARGV[5], items = {}, n = 0, of = {}}}
local function add(part, s, id, k)
  part.items[#part.items + 1] = s
  part.n = part.n + k
  part.of[id] = true
end
local seen = 0
for _, s in ipairs(b.live) do
  local id, a, z = item(s)
  if a == nil then a, z = 1, events_of(entry(id).f) end
  local k = z - a + 1
  if seen >= half then
    add(parts[2], s, id, k)
  elseif seen + k <= half then
    add(parts[1], s, id, k)
  else
    local m = half - seen
    add(parts[1], id .. '/' .. a .. '/' .. (a + m - 1), id, m)
    add(parts[2], id .. '/' .. (a + m) .. '/' .. z, id, k - m)
  end
  seen = seen + k
end
for _, id in ipairs(b.ids) do
  local added = {}
  for _, part in ipairs(parts) do
    if part.of[id] then added[#added + 1] = part.bid end
  end
  hold(id, bid, added)
end
local held = P .. 'held:' .. b.owner
redis.call('LREM', held, 0, bid)
for i = 2, 1, -1 do
  record(parts[i].bid, b.owner, b.topic, parts[i].items, parts[i].n)
  redis.call('LPUSH', held, parts[i].bid)
end
redis.call('DEL', P .. 'batch:' .. bid)
return hints(2)
"""
)

# ARGV: P, G, replay (1: back into the stream; 0: purge) -> {queued, unclaimed, n}. A replayed event goes back
# as new (an entry of one event), with its event id; the dead-lettered counter goes down by as many, so the
# invariant holds.
DEAD_LETTERS = (
    _HEADER
    + """
local replay = ARGV[3] == '1'
local rows = redis.call('XRANGE', D, '-', '+')
local size = 0
for _, en in ipairs(rows) do
  local e = field(en[2], 'e')
  if replay then
    redis.call('XADD', S, '*', 't', field(en[2], 't'), 'n', 1, 'b', e)
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
