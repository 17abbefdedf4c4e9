"""What the forwarder and the forwarding sink need of a queue, and the batch it claims: the SQLite spool and the
Redis stream both provide it."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from console_proxy.core.accounting import Answer
from console_proxy.core.events import OutboundEvent
from console_proxy.core.metrics import QueueStats
from console_proxy.delivery.sink import Charge

# How long a client should wait when a queue cannot take its batch now (full, unwritable, unreachable, closing).
QUEUE_RETRY_AFTER_S = 5


@dataclasses.dataclass(frozen=True)
class Batch:
    """Events of one topic claimed under one batch_id; `body` is the upstream request body, from the stored JSON."""

    batch_id: str
    topic: str
    count: int
    body: bytes


class Queue(Protocol):
    """Claim a batch, then ack or dead-letter it; `depth` and `unclaimed` tell the forwarder when to claim.

    `depth` counts the events the forwarder may still send (claimed ones included), `unclaimed` those not
    yet in a batch; the forwarder claims at once while `depth > unclaimed` (a claimed batch waits).
    """

    depth: int
    unclaimed: int

    async def claim(self, max_events: int) -> Batch | None: ...

    async def ack(self, batch_id: str, answer: Answer | None = None) -> int:
        """The collector took the batch (answering `answer`, or None for a 2xx without counts): its events leave
        the queue, accounted per topic in the same transaction (or script)."""

    async def dead_letter(self, batch_id: str, status: int) -> int: ...

    async def split(self, batch_id: str) -> None: ...

    async def expire(self) -> int: ...


class DurableQueue(Queue, Protocol):
    """A Queue that a ForwardingSink keeps batches in: opened and closed with it, written by `put`, watched for work
    that other processes left (the Redis stream), read for readiness and metrics."""

    writable: bool
    kept_where: str
    """Where undelivered events stay, for the log line when the shutdown grace runs out."""

    async def open(self) -> None:
        """Open the store; SinkRefused when it cannot be written now (not fatal: not ready until it can)."""

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None:
        """Keep a batch of `topic` durably before returning, or raise SinkRefused; never partially."""

    def has_room(self, events: int, size: int) -> bool: ...

    def ready(self) -> bool:
        """Whether the next batch (one like the largest seen) would be taken now: for /readyz."""

    def intact(self) -> bool:
        """The store is still the one opened (a spool file moved away is not)."""

    def stats(self) -> QueueStats: ...

    def gauges(self) -> list[tuple[str, str, float]]:
        """Extra gauges for /metrics, as (name, help, value)."""

    async def watch(self, wake: Callable[[], None], sleep: Callable[[float], Awaitable[None]]) -> None:
        """Background work of the queue's own until cancelled, calling `wake` when there is work for the forwarder;
        returns at once when there is none."""

    async def close(self) -> None: ...


@runtime_checkable
class ChargingQueue(Protocol):
    """A queue whose put also takes a client's budget, in the same step (the Redis queue's put script)."""

    url: str

    async def put_charged(self, topic: str, events: Sequence[OutboundEvent], charge: Charge) -> bool:
        """`put`, and `charge` taken first: False when the budget is spent (nothing kept, nothing charged); else
        kept as `put` keeps it, or SinkRefused (the budget then stays charged, as a refused batch is work too)."""
