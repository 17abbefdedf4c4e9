"""The seam between ingestion and what happens to accepted events: a local file or the spool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from console_proxy.errors import ConsoleProxyError

OutboundEvent = dict[str, Any]


class SinkRefused(ConsoleProxyError):  # noqa: N818 -- a refusal, not a failure
    """The sink cannot take a batch now (full, unwritable, shutting down); answer `status` with `Retry-After`.

    `reason` is the short text of the answer's body, `label` the reason as a metric label.
    """

    def __init__(self, reason: str, *, label: str = "sink_refused", status: int = 503, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.label = label
        self.status = status
        self.retry_after = retry_after

    def copy(self) -> SinkRefused:
        """The same refusal as a new exception, for each of several waiters."""
        return SinkRefused(self.reason, label=self.label, status=self.status, retry_after=self.retry_after)


class Sink(Protocol):
    """Where accepted outbound events go. `put` returns only once they are durable."""

    async def start(self) -> None:
        """Open files and start background work; called from the lifespan."""

    async def put(self, events: Sequence[OutboundEvent]) -> None:
        """Store a batch durably (committed and flushed) or raise SinkRefused; never partially."""

    def ready(self) -> bool:
        """True while a `put` can succeed (used by /readyz)."""

    async def aclose(self) -> None:
        """Stop accepting, flush within the configured grace, release resources."""
