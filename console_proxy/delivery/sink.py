"""The seam between ingestion and what happens to accepted events: a local file or the spool."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

from console_proxy.core.errors import SinkRefused
from console_proxy.core.events import OutboundEvent

__all__ = ["BatchSizes", "Charge", "OutboundEvent", "Sink", "SinkRefused"]


@dataclasses.dataclass(frozen=True)
class Charge:
    """A client's budget, taken by the store in the same step as the put (the Redis queue's put script; docs/
    design.md, "Redis stream entries"): the two keys of the `limits` sliding window counter (previous window,
    current window), its limit, its window in seconds, and what this batch costs."""

    keys: tuple[str, str]
    limit: int
    window_s: int
    cost: int


class Sink(Protocol):
    """Where accepted outbound events go, one batch of one topic at a time. `put` returns only once it is durable."""

    async def start(self) -> None:
        """Open files and start background work; called from the lifespan."""

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None:
        """Store a batch of `topic` durably (committed and flushed) or raise SinkRefused; never partially."""

    def ready(self) -> bool:
        """True while a `put` can succeed (used by /readyz)."""

    async def aclose(self, *, drain: bool = True) -> None:
        """Stop accepting, flush within the configured grace (none when `drain` is false: telemetry was turned
        off, and nothing more may be sent), release resources. `start()` may open it again."""


# The largest batch a store is asked to have room for, to be ready: what one browser request can hold.
READY_MAX_EVENTS = 100
READY_MAX_BYTES = 64 * 1024
# Before any batch was seen: one event of a usual size.
FIRST_BATCH_BYTES = 512


@dataclasses.dataclass
class BatchSizes:
    """How large a batch readiness must find room for: the largest one seen so far (kept or refused for lack of
    room), at least one event of a usual size, at most what one request can hold. A batch larger than the store's
    whole bound is left out: it is refused whatever the store holds, and says nothing of the next one.

    So a store is not ready exactly when a batch like the largest it was sent would now be refused."""

    max_events: int
    max_bytes: int
    events: int = 1
    size: int = FIRST_BATCH_BYTES

    def saw(self, events: int, size: int) -> None:
        if events <= self.max_events and size <= self.max_bytes:
            self.events = min(READY_MAX_EVENTS, max(self.events, events))
            self.size = min(READY_MAX_BYTES, max(self.size, size))

    def needed(self) -> tuple[int, int]:
        """(events, bytes) to have room for, within the store's bounds."""
        return min(self.events, self.max_events), min(self.size, self.max_bytes)
