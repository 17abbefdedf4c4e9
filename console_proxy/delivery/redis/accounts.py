"""The Redis queue's end-to-end accounting per topic (docs/design.md, "End-to-end accounting"): fields
`acct:<count>:<topic>` of the counters hash, changed by the same scripts that change the stream, so one HGETALL
reads them all at one point in time; and the queue's epoch script, which also restores them when Redis lost them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from console_proxy.core.accounting import Answer, TopicAccount, accounts

PREFIX = "acct:"
# Spliced into every script after the header: `book(topic, count, n)`, and the collector's counts from ARGV.
LUA = """
local function book(topic, name, n)
  if n ~= 0 then redis.call('HINCRBY', C, 'acct:' .. name .. ':' .. topic, n) end
end
local function answer_at(i)
  if ARGV[i] == nil or ARGV[i] == '' then return nil end
  return {tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])}
end
-- n events of `topic` left the queue: delivered (status 0; the collector's counts, or uncounted) or dead letters.
local function book_finished(topic, n, status, counts)
  if n == 0 then return end
  book(topic, 'queued', 0 - n)
  if status ~= 0 then
    book(topic, 'dead_lettered', n)
  elseif counts then
    book(topic, 'stored', counts[1]); book(topic, 'duplicates', counts[2]); book(topic, 'rejected', counts[3])
  else
    book(topic, 'uncounted', n)
  end
end
-- Per topic, how many events `rows` (stream entries) hold.
local function by_topic(rows)
  local out = {}
  for _, en in ipairs(rows) do
    local t = field(en[2], 't')
    out[t] = (out[t] or 0) + events_of(en[2])
  end
  return out
end
"""

# The queue's epoch: a random id in the counters hash. When it is gone, Redis lost the hash (a restart without
# persistence, a flush): the counters are added back from the caller's last reading, and what was queued then is
# counted as lost, once per lost epoch whichever process sees it first; per topic too. A queue of an older version
# (an epoch, no `acct_version`) gets its accounts from what it holds: queued entries and dead letters count as
# accepted from then on.
# ARGV: P, G, new epoch, known epoch ('' for none), last accepted, forwarded, dead_lettered, expired, lost, queued,
# then pairs of `acct:` field and last value -> {queued, unclaimed, 0 unchanged | 1 adopted | 2 restored, epoch,
# lost now}
EPOCH_BODY = """
local known = ARGV[4]
local cur = redis.call('HGET', C, 'epoch')
if cur and cur == known then return hints(0, cur, 0) end
if not cur then
  cur = ARGV[3]
  redis.call('HSET', C, 'epoch', cur, 'acct_version', 1)
end
if known ~= '' and redis.call('HGET', C, 'restored_from') ~= known then
  redis.call('HSET', C, 'restored_from', known)
  redis.call('HINCRBY', C, 'accepted', tonumber(ARGV[5]))
  redis.call('HINCRBY', C, 'forwarded', tonumber(ARGV[6]))
  redis.call('HINCRBY', C, 'dead_lettered', tonumber(ARGV[7]))
  redis.call('HINCRBY', C, 'expired', tonumber(ARGV[8]))
  local lost = tonumber(ARGV[9]) + tonumber(ARGV[10])
  redis.call('HINCRBY', C, 'lost', lost)
  for i = 11, #ARGV - 1, 2 do
    local name, topic = string.match(ARGV[i], '^acct:([a-z_]+):(.*)$')
    if name == 'queued' then book(topic, 'lost', tonumber(ARGV[i + 1]))
    elseif name then book(topic, name, tonumber(ARGV[i + 1])) end
  end
  return hints(2, cur, lost)
end
if not redis.call('HGET', C, 'acct_version') then
  for t, k in pairs(by_topic(redis.call('XRANGE', S, '-', '+'))) do
    book(t, 'accepted', k); book(t, 'queued', k)
  end
  for t, k in pairs(by_topic(redis.call('XRANGE', D, '-', '+'))) do
    book(t, 'accepted', k); book(t, 'dead_lettered', k)
  end
  redis.call('HSET', C, 'acct_version', 1)
end
return hints(1, cur, 0)
"""


def answer_args(answer: Answer | None) -> list[object]:
    """The collector's counts as script arguments ('' for none: uncounted)."""
    return [answer.stored, answer.duplicates, answer.rejected] if answer is not None else ["", "", ""]


def restore_args(last: Mapping[str, int]) -> list[object]:
    """The `acct:` fields of the last reading, as (field, value) pairs for the epoch script."""
    return [item for name, value in sorted(last.items()) if name.startswith(PREFIX) for item in (name, value)]


def decoded(fields: Mapping[Any, Any]) -> dict[str, int]:
    """An HGETALL of the counters hash as names and whole numbers (a field that is not one is left out)."""
    out: dict[str, int] = {}
    for key, value in fields.items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        try:
            out[name] = int(float(value))
        except (TypeError, ValueError):
            continue
    return out


def topic_accounts(fields: Mapping[str, int]) -> tuple[TopicAccount, ...] | None:
    """Every topic's figures from the counters hash; None for a queue without accounts yet."""
    if "acct_version" not in fields:
        return None
    rows, queued = [], {}
    for key, value in fields.items():
        if not key.startswith(PREFIX):
            continue
        name, _, topic = key[len(PREFIX) :].partition(":")
        if name == "queued":
            queued[topic] = value
        else:
            rows.append((topic, name, value))
    return accounts(rows, queued)
