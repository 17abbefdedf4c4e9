"""Fair limits: each client (its address, and its Origin when it sends one) has a budget of events.

A burst of `client_burst` events, refilled at `client_rate` events a second: a sliding window of
`burst / rate` seconds from the `limits` library (whose strategies also run on Redis).
"""

from __future__ import annotations

import math

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, Storage
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.types import Scope

from console_proxy.guards import header


def client_key(scope: Scope) -> str:
    """Who is asking: the peer address, and the Origin when there is one (a page of the console and a script on
    the same machine are different clients)."""
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    origin = header(scope, b"origin")
    return peer if origin is None else f"{peer} {origin.strip().lower()}"


class ClientBudget:
    """`take(client, events)`: None when the client may send them now, else the seconds to wait (Retry-After).

    Builds its storage on first use: the in-memory one starts a timer thread, which `__init__` must not.
    """

    def __init__(self, rate: float, burst: int, *, storage: Storage | None = None) -> None:
        self._rate = rate
        self._burst = burst
        self._item = RateLimitItemPerSecond(burst, max(1, round(burst / rate)))
        self._storage = storage
        self._limiter: SlidingWindowCounterRateLimiter | None = None

    def take(self, client: str, events: int) -> int | None:
        if events <= 0:
            return None
        if self._limiter is None:
            self._limiter = SlidingWindowCounterRateLimiter(self._storage or MemoryStorage())
        # A batch larger than the whole burst costs the whole burst, or it could never pass.
        cost = min(events, self._burst)
        if self._limiter.hit(self._item, client, cost=cost):
            return None
        return max(1, math.ceil(cost / self._rate))
