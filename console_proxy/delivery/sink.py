"""The seam between ingestion and what happens to accepted events: a local file or the spool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from console_proxy.core.errors import SinkRefused
from console_proxy.core.events import OutboundEvent

__all__ = ["OutboundEvent", "Sink", "SinkRefused"]


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
