"""`console-proxy status` for `--queue redis://...`: the shared queue's depth and counters, its consumers and
what each holds, read from Redis without changing it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from console_proxy.core.accounting import TopicAccount, account_line
from console_proxy.core.settings import Settings

LOCAL_ACCOUNTING = "accounting: none in local mode (nothing is sent, so there is no collector's answer to count)"


def redis_queue_lines(settings: Settings) -> list[str]:
    """The queue lines of the report, ending with the last delivery (as the spool's do)."""
    from console_proxy.delivery.redis.client import (  # here: the redis extra is optional
        REDIS_ERRORS,
        display,
        queue_keys,
        read_consumers,
        read_queue_stats,
        sync_client,
    )
    from console_proxy.delivery.redis.queue import GROUP

    where = display(settings.queue)
    keys = queue_keys()
    try:
        with sync_client(settings.queue) as client:
            stats = read_queue_stats(client, keys)
            consumers = read_consumers(client, keys, GROUP)
            dead = int(client.xlen(keys.dead))
    except REDIS_ERRORS as error:
        return [f"queue: {where} cannot be reached ({type(error).__name__})", "last delivery: unknown"]
    lines = [
        f"queue: {stats.spooled} events, {stats.spooled_bytes} bytes in the redis stream at {where} "
        f"({stats.accepted} accepted, {stats.forwarded} forwarded, {stats.dead_lettered} dead-lettered, "
        f"{stats.expired} expired"
        + (f", {stats.lost} lost when Redis lost its data" if stats.lost else "")
        + f"; {dead} dead letters kept)",
        f"consumers: {len(consumers)}",
    ]
    lines += [f"  {c.name}: {c.pending} pending, idle {c.idle_ms / 1000:.1f} s" for c in consumers]
    if stats.last_delivery_at is None:
        lines.append("last delivery: never")
    else:
        lines.append(f"last delivery: {_utc(stats.last_delivery_at)}")
    return lines + accounting_lines(stats.topics)


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def accounting_lines(topics: Iterable[TopicAccount] | None) -> list[str]:
    """Per topic: accepted = stored + duplicates + rejected (+ uncounted, lost) + queued + dead-lettered + expired,
    and the gap when it does not add up (docs/design.md, "End-to-end accounting")."""
    if topics is None:
        return ["accounting: not kept yet by this queue (it starts at the next serve of this version)"]
    listed = list(topics)
    if not listed:
        return ["accounting: nothing accepted yet"]
    gaps = sum(1 for account in listed if account.gap)
    head = "accounting by topic:" if not gaps else f"accounting by topic ({gaps} with a GAP):"
    return [head, *(account_line(account) for account in listed)]


def accounts_of(rows: Any) -> list[TopicAccount] | None:
    """The topics' figures from a /_telemetry/v1/status reading (`topics`); None when it has none."""
    if not isinstance(rows, list):
        return None
    names = [name for name in TopicAccount.__dataclass_fields__ if name != "topic"]
    return [
        TopicAccount(str(row.get("topic")), **{name: int(row.get(name) or 0) for name in names})
        for row in rows
        if isinstance(row, Mapping)
    ]
