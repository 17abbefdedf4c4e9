"""Connections to the Redis queue and what is read from it without changing it: persistence, stats, consumers.

The `redis` package is an optional extra (`console-proxy[redis]`); it is imported here only, on first use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

from console_proxy.core.errors import SettingsError
from console_proxy.core.metrics import QueueStats
from console_proxy.delivery.queue_url import SentinelURL, display_queue_url, parse_sentinel_url
from console_proxy.delivery.redis.accounts import decoded, topic_accounts

try:
    import redis
    import redis.asyncio
    import redis.asyncio.sentinel
    import redis.sentinel
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError:  # pragma: no cover -- the extra is installed in every test run
    raise SettingsError(
        "--queue redis://... needs the redis package; install it with: pip install 'console-proxy[redis]'."
    ) from None

logger = logging.getLogger("console_proxy")

DEFAULT_PREFIX = "console-proxy"
CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 5.0
# A lost connection is an error the caller sees, never a silent retry: a retried put could append twice.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)


@dataclasses.dataclass(frozen=True)
class QueueKeys:
    """The keys of one queue; the braces keep them in one hash slot."""

    prefix: str

    @property
    def stream(self) -> str:
        return self.prefix + "stream"

    @property
    def counters(self) -> str:
        return self.prefix + "counters"

    @property
    def batch_of(self) -> str:
        return self.prefix + "batch_of"

    @property
    def dead(self) -> str:
        return self.prefix + "dead"


def queue_keys(prefix: str | None = None) -> QueueKeys:
    return QueueKeys("{" + (prefix or DEFAULT_PREFIX) + "}:")


def _options() -> dict[str, Any]:
    return {
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "retry": None,
        "retry_on_error": [],
    }


def async_client(url: str) -> Any:
    """An asyncio client for `url` (redis://, rediss://, or the Sentinel form) that never retries a command on
    its own."""
    options = _options()
    options["retry"] = redis.asyncio.retry.Retry(NoBackoff(), 0)
    sentinel = parse_sentinel_url(url)
    if sentinel is None:
        return redis.asyncio.Redis.from_url(url, **options)
    sentinels: Any = redis.asyncio.sentinel.Sentinel  # redis-py leaves these untyped
    return sentinels(list(sentinel.sentinels), sentinel_kwargs=_sentinel_options(), **options).master_for(
        sentinel.service, **_master_options(sentinel)
    )


async def close_async_client(client: Any) -> None:
    """Close `client` and, for the Sentinel form, the connections to the sentinels its pool asked."""
    await client.aclose()
    await client.connection_pool.disconnect()
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()


def _sentinel_options() -> dict[str, Any]:
    return {"socket_connect_timeout": CONNECT_TIMEOUT_S, "socket_timeout": SOCKET_TIMEOUT_S}


def _master_options(sentinel: SentinelURL) -> dict[str, Any]:
    return {"db": sentinel.db, "username": sentinel.username, "password": sentinel.password, "ssl": sentinel.ssl}


@contextlib.contextmanager
def sync_client(url: str) -> Iterator[Any]:
    """A blocking client for one reading (a metrics scrape, `status`), closed afterwards."""
    options = _options()
    options["retry"] = redis.retry.Retry(NoBackoff(), 0)
    sentinel = parse_sentinel_url(url)
    if sentinel is None:
        client = redis.Redis.from_url(url, **options)
    else:
        sentinels: Any = redis.sentinel.Sentinel
        client = sentinels(list(sentinel.sentinels), sentinel_kwargs=_sentinel_options(), **options).master_for(
            sentinel.service, **_master_options(sentinel)
        )
    try:
        yield client
    finally:
        client.close()


def describe_persistence(appendonly: str | None, appendfsync: str | None, save: str | None) -> tuple[str, bool]:
    """What a crash of Redis can lose with these settings, in a few words, and whether appendonly is on."""
    if appendonly == "yes":
        loses = {
            "always": "nothing acknowledged",
            "everysec": "up to about one second of accepted batches",
            "no": "whatever the operating system had not yet written (often up to 30 seconds)",
        }.get(appendfsync or "", f"an unknown amount (appendfsync {appendfsync})")
        return f"appendonly yes, appendfsync {appendfsync}: a Redis crash can lose {loses}", True
    if save:
        return f"appendonly no, snapshots (save {save}): a Redis crash can lose everything since the last one", False
    return "appendonly no, no snapshots: a Redis restart loses every queued event", False


LOSES_NOTHING = "a Redis crash can lose nothing acknowledged"


def loses_nothing(line: str) -> bool:
    """Whether a durability line says that no acknowledged event can be lost (appendfsync always)."""
    return line.endswith(LOSES_NOTHING)


async def durability_line(client: Any, url: str) -> tuple[str, bool]:
    """One line for the log about the queue's persistence, and whether appendonly is on (False if unreadable)."""
    try:
        values = {name: (await client.config_get(name)) for name in ("appendonly", "appendfsync", "save")}
    except REDIS_ERRORS:
        raise
    except redis.exceptions.ResponseError as exc:  # CONFIG is often disabled on managed services
        return _refused(url, exc), False
    return _describe(url, values)


def check_durability(url: str) -> tuple[str, bool]:
    """`durability_line` with a blocking client, for start-up checks; raises REDIS_ERRORS when unreachable."""
    with sync_client(url) as client:
        try:
            values = {name: client.config_get(name) for name in ("appendonly", "appendfsync", "save")}
        except redis.exceptions.ResponseError as exc:
            return _refused(url, exc), False
    return _describe(url, values)


def _refused(url: str, exc: Exception) -> str:
    return f"redis queue {display(url)}: persistence unknown (CONFIG GET refused: {exc}); what a crash loses is unknown"


def _describe(url: str, replies: dict[str, Any]) -> tuple[str, bool]:
    def text(name: str) -> str | None:
        reply = replies[name]
        value = reply.get(name.encode(), reply.get(name))
        return value.decode() if isinstance(value, bytes) else value

    line, aof = describe_persistence(text("appendonly"), text("appendfsync"), text("save"))
    return f"redis queue {display(url)}: {line}", aof


def display(url: str) -> str:
    """`url` without user, password or query (either may hold a credential)."""
    return display_queue_url(url)


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def read_queue_stats(client: Any, keys: QueueKeys) -> QueueStats:
    """The group's counters and per-topic accounts, read in one command (they only change inside scripts, so they
    agree)."""
    fields = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in client.hgetall(keys.counters).items()}
    names = ["accepted", "forwarded", "dead_lettered", "expired", "queued", "bytes", "last_delivery_at", "lost"]
    values = {name: fields.get(name) for name in names}
    last = float(values["last_delivery_at"]) if values["last_delivery_at"] is not None else 0.0
    return QueueStats(
        accepted=_int(values["accepted"]),
        forwarded=_int(values["forwarded"]),
        dead_lettered=_int(values["dead_lettered"]),
        expired=_int(values["expired"]),
        spooled=_int(values["queued"]),
        spooled_bytes=_int(values["bytes"]),
        last_delivery_at=last or None,
        lost=_int(values["lost"]),
        topics=topic_accounts(decoded(fields)),
    )


@dataclasses.dataclass(frozen=True)
class Consumer:
    """One consumer of the group: its name (host:pid:tag), entries it holds unacknowledged, ms since it acted."""

    name: str
    pending: int
    idle_ms: int


def read_consumers(client: Any, keys: QueueKeys, group: str) -> list[Consumer]:
    """The group's consumers; empty when there is no stream or group yet."""
    try:
        rows = client.xinfo_consumers(keys.stream, group)
    except redis.exceptions.ResponseError:
        return []
    return [
        Consumer(
            name=row["name"].decode() if isinstance(row["name"], bytes) else str(row["name"]),
            pending=int(row["pending"]),
            idle_ms=int(row["idle"]),
        )
        for row in rows
    ]


def read_gauges(client: Any, keys: QueueKeys, group: str) -> list[tuple[str, str, float]]:
    """The group's consumers, entries claimed and not yet acknowledged, batches taken over after the lease, and
    dead letters kept, as (name, help, value) for /metrics."""
    consumers = read_consumers(client, keys, group)
    # A consumer holds entries (one per accepted batch); the events they hold are the queued ones handed out.
    queued, unclaimed, reclaimed = client.hmget(keys.counters, ["queued", "unclaimed", "reclaimed"])
    dead = client.xlen(keys.dead)
    return [
        ("console_proxy_queue_consumers", "Consumers in the Redis queue's group (one per process).", len(consumers)),
        (
            "console_proxy_queue_pending_events",
            "Events claimed by a consumer and not yet acknowledged, over the group.",
            max(0, _int(queued) - _int(unclaimed)),
        ),
        (
            "console_proxy_queue_reclaimed_batches_total",
            "Batches taken over from a consumer idle past the lease (since the queue was created).",
            int(reclaimed or 0),
        ),
        ("console_proxy_queue_dead_letters", "Dead letters kept in the Redis queue's stream.", int(dead)),
    ]


async def client_read_recent(client: Any, prefix: str | None = None) -> list[bytes]:
    """The newest events the group kept (oldest first), as the PUT script wrote them: one JSON object each."""
    rows: list[bytes] = await client.lrange(queue_keys(prefix).prefix + "recent", 0, -1)
    return rows


def say_older(names: set[str], said: set[str]) -> set[str]:
    """Consumers of an older version in the group (`names`) cannot read the entries this one writes (one per
    batch; docs/design.md, "Redis stream entries"): each said once, as an error; what has been said now."""
    for name in sorted(names - said):
        logger.error(
            "an older console-proxy (consumer %s) shares the redis queue and cannot read the entries this version "
            "writes; stop it or upgrade it (every process of a group runs the same version)",
            name,
        )
    return said | names
