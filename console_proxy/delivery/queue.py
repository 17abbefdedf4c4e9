"""What the forwarder needs of a queue, and the batch it claims: the SQLite spool and the Redis stream both
provide it."""

from __future__ import annotations

import dataclasses
from typing import Protocol

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

    async def ack(self, batch_id: str) -> int: ...

    async def dead_letter(self, batch_id: str, status: int) -> int: ...

    async def split(self, batch_id: str) -> None: ...

    async def expire(self) -> int: ...
