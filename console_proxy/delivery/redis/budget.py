"""A client's budget taken inside the Redis queue's put script (docs/design.md, "Redis stream entries").

The budgets are `limits`' sliding window counters (asgi/budgets.py); in shared mode `limits` keeps one in Redis
as two counters, the current window's and the previous one's, under the keys `asgi/budgets.py` names for the
put. `spend` follows the same rules on the same keys, so a budget spent by the put and one spent by `limits`
(an invalid batch, a WebSocket message) are one budget: the previous window counts for the part of it still
inside the sliding window; a current window with less than one window to live becomes the previous one; a
charge that would go over the limit takes nothing. tests/asgi/test_budgets.py spends one budget both ways.
"""

from __future__ import annotations

# Spliced into the put script: `spend(previous, current, limit, window_ms, cost)` -> whether it was taken.
LUA = """
local function spend(prev, cur, limit, window_ms, cost)
  if cost > limit then return false end
  local ttl = tonumber(redis.call('PTTL', cur))
  if ttl > 0 and ttl < window_ms then
    redis.call('RENAME', cur, prev)
    redis.call('SET', cur, 0, 'PX', ttl + window_ms)
  end
  local before = tonumber(redis.call('GET', prev)) or 0
  local before_ttl = math.max(0, tonumber(redis.call('PTTL', prev)) or 0)
  local now = tonumber(redis.call('GET', cur)) or 0
  if math.floor(before * before_ttl / window_ms) + now + cost > limit then return false end
  if redis.call('EXISTS', cur) == 1 then
    redis.call('INCRBY', cur, cost)
  else
    redis.call('SET', cur, cost, 'PX', window_ms * 2)
  end
  return true
end
"""
