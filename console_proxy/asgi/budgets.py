"""Fair limits: each client (its address, and the origin decision of its requests) has a budget of events.

A burst of `client_burst` events, refilled at `client_rate` events a second: a sliding window of
`burst / rate` seconds from the `limits` library. In memory, or in Redis when the queue is there, so that
every worker and every machine sharing the queue shares each client's budget too.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisSentinelStorage as AsyncRedisSentinelStorage
from limits.aio.storage import RedisStorage as AsyncRedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter as AsyncSlidingWindow
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.types import Scope

from console_proxy.asgi.proxy_headers import parse_address
from console_proxy.delivery.queue_url import parse_sentinel_url
from console_proxy.delivery.sink import Charge

logger = logging.getLogger("console_proxy")

# A budget store that fails is logged once per outage, and at most this often.
FAILURE_LOG_EVERY_S = 60.0
# An IPv6 client is its network of this prefix length (a host is usually given a /64 of its own).
IPV6_CLIENT_PREFIX = 64
# How often the in-process store sweeps out the keys of clients that went away.
SWEEP_EVERY_S = 1.0


class SweepingMemoryStorage(MemoryStorage):
    """limits' in-process storage, with its sweep of expired keys started at most once every SWEEP_EVERY_S.

    limits starts a new 10 ms timer thread on a hit whenever the previous one has ended: on a busy proxy, a thread
    started from the event loop every 10 ms, each start waiting for the new thread (a tenth of the loop's time in
    issue 12's profile). An expired key is also dropped whenever it is read, so the sweep only bounds the memory
    held for clients that went away: once a second is enough.

    The hook is limits' private, name-mangled `__schedule_expiry` (limits has no public one), so the versions are
    bounded in pyproject.toml and tests/asgi/test_budgets.py fails when an allowed version no longer has it.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._next_sweep = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 -- limits' private hook, name-mangled
        now = self._clock()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_EVERY_S
            super()._MemoryStorage__schedule_expiry()  # type: ignore[misc]


def peer_key(scope: Scope) -> str:
    """Who is asking, by what a client cannot choose: its address (the one a trusted proxy gave, or the peer's).
    Every loopback address (127.0.0.0/8, ::1) is one client, since any local process may bind any of them; an IPv6
    client is its /64, which one host usually holds whole; anything else that is not an address is `unknown`."""
    client = scope.get("client")
    ip = parse_address(str(client[0])) if client else None
    if ip is None:
        return "unknown"
    if ip.is_loopback:
        return "loopback"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(ip)


def client_key(scope: Scope, origin: str | None) -> str:
    """Whose budget a request spends: the peer (`peer_key`) and the origin decision (`origins.origin_of`), so that
    a page of the console and a script on the same machine are different clients, and no header a client
    rewrites (the Origin's or the Host's port, X-Forwarded-For from an untrusted peer) makes a new one."""
    return f"{peer_key(scope)} {origin if origin is not None else 'foreign'}"


class ClientBudget:
    """`await take(client, events)`: None when the client may send them now, else the seconds to wait.

    `redis_url` (the queue's `redis://` URL) keeps the budgets in that Redis; None keeps them in this process.
    Builds its store on first use: the in-memory one starts a timer thread, which `__init__` must not. When the
    store fails, events pass (the queue itself then decides) and that is logged once a minute.
    """

    def __init__(self, rate: float, burst: int, *, redis_url: str | None = None) -> None:
        self._rate = rate
        self._burst = burst
        self._item = RateLimitItemPerSecond(burst, max(1, round(burst / rate)), namespace="console-proxy-budget")
        self._redis_url = redis_url
        self._local: SlidingWindowCounterRateLimiter | None = None
        self._shared: AsyncSlidingWindow | None = None
        self._shared_storage: AsyncRedisStorage | None = None
        self._failure_logged_at = -FAILURE_LOG_EVERY_S
        self._failing = False

    @property
    def redis_url(self) -> str | None:
        """Where the budgets are kept (the queue's Redis), or None: in this process."""
        return self._redis_url

    async def aclose(self) -> None:
        """Close the shared store's connections (a budget in this process has none); the next take reopens."""
        storage, self._shared_storage, self._shared = self._shared_storage, None, None
        if storage is not None:
            await _close_storage(storage)

    def cost(self, events: int) -> int:
        """What `events` cost: a batch larger than the whole burst costs the whole burst, or it could never pass."""
        return min(events, self._burst)

    def wait_s(self, cost: int) -> int:
        """The seconds a client refused `cost` is asked to wait (Retry-After)."""
        return max(1, math.ceil(cost / self._rate))

    def shared_charge(self, client: str, events: int) -> Charge | None:
        """The charge for the Redis queue's put script to take (delivery/redis/budget.py): `limits`' own keys for
        this client's sliding window, so both ways spend one budget. None when the budgets are in this process."""
        if self._redis_url is None or events <= 0:
            return None
        storage = self._storage()
        key = self._item.key_for(client)
        # limits' key names (bounded in pyproject.toml; tests/asgi/test_budgets.py spends a budget both ways).
        previous, current = storage._previous_window_key(key), storage._current_window_key(key)
        keys = (storage.bridge.prefixed_key(previous), storage.bridge.prefixed_key(current))
        return Charge(keys, self._item.amount, self._item.get_expiry(), self.cost(events))

    async def take(self, client: str, events: int) -> int | None:
        if events <= 0:
            return None
        cost = self.cost(events)
        try:
            granted = await self._hit(client, cost)
        except Exception as exc:
            # Once per outage (the queue's own line says when Redis is back), at most once a minute.
            now = time.monotonic()
            if not self._failing and now - self._failure_logged_at >= FAILURE_LOG_EVERY_S:
                self._failure_logged_at = now
                logger.warning("client budgets unavailable (%s); events pass unmetered", type(exc).__name__)
            self._failing = True
            return None
        self._failing = False
        return None if granted else self.wait_s(cost)

    async def _hit(self, client: str, cost: int) -> bool:
        if self._redis_url is None:
            if self._local is None:
                self._local = SlidingWindowCounterRateLimiter(SweepingMemoryStorage())
            return self._local.hit(self._item, client, cost=cost)
        if self._shared is None:
            self._shared = AsyncSlidingWindow(self._storage())
        return await self._shared.hit(self._item, client, cost=cost)

    def _storage(self) -> AsyncRedisStorage:
        assert self._redis_url is not None
        if self._shared_storage is None:
            self._shared_storage = _shared_storage(self._redis_url)
        return self._shared_storage


def _shared_storage(url: str) -> AsyncRedisStorage:
    """The queue's Redis as a `limits` store; the Sentinel form is console-proxy's own, so it is spelled out."""
    sentinel = parse_sentinel_url(url)
    if sentinel is None:
        # A pool of our own, so that shutdown can close its connections: limits' storages have no close.
        import redis.asyncio

        pool = redis.asyncio.ConnectionPool.from_url(url)
        pooled: dict[str, Any] = {"connection_pool": pool}  # passed on to redis-py; limits types its options narrower
        return AsyncRedisStorage("async+" + url, implementation="redispy", **pooled)
    hosts = ",".join(f"{host}:{port}" for host, port in sentinel.sentinels)
    options: dict[str, Any] = {"db": sentinel.db, "ssl": sentinel.ssl}
    if sentinel.username is not None:
        options["username"] = sentinel.username
    if sentinel.password is not None:
        options["password"] = sentinel.password
    return AsyncRedisSentinelStorage(
        f"async+redis+sentinel://{hosts}",
        implementation="redispy",
        service_name=sentinel.service,
        use_replicas=False,
        **options,
    )


async def _close_storage(storage: AsyncRedisStorage) -> None:
    """Close the redis-py client limits made for `storage` (the pool given to it, or Sentinel's own)."""
    pool = storage.options.get("connection_pool")
    if hasattr(pool, "aclose"):
        await pool.aclose()  # type: ignore[union-attr]  # limits types its options as plain values
        return
    # Sentinel: limits builds the client itself and keeps it on its bridge (limits 5.x, bounded in pyproject.toml).
    client = getattr(getattr(storage, "bridge", None), "storage", None)
    if client is not None:
        from console_proxy.delivery.redis.client import close_async_client

        await close_async_client(client)
