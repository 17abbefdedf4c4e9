"""The last outbound events, as they were (or will be) forwarded, each with its topic: what leaves, shown to the
console's user. With the Redis queue they are the group's, kept in Redis by the script that queues them, so every
worker and replica answers `/recent` alike."""

from __future__ import annotations

import collections
import itertools
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from console_proxy.core.events import OutboundEvent
from console_proxy.delivery.redis.scripts import RECENT_EVENTS  # the one count, for both kinds (no redis import)

logger = logging.getLogger("console_proxy")


class RecentEvents:
    """A ring buffer of the newest `size` outbound events, oldest first; with a topic, each shows it first.

    `redis_url`: read the group's newest events from the Redis queue instead (the local buffer answers only while
    Redis cannot)."""

    def __init__(self, size: int = RECENT_EVENTS, *, redis_url: str | None = None) -> None:
        # (topic, event): the copy that shows the topic is made when someone looks, not for every event kept.
        self._events: collections.deque[tuple[str | None, Mapping[str, Any]]] = collections.deque(maxlen=size)
        self._redis_url = redis_url
        self._client: Any = None

    def extend(self, events: Iterable[OutboundEvent], topic: str | None = None) -> None:
        self._events.extend(zip(itertools.repeat(topic), events))

    def snapshot(self) -> list[Mapping[str, Any]]:
        """This process's newest events."""
        return [event if topic is None else {"topic": topic, **event} for topic, event in self._events]

    async def read(self) -> list[Mapping[str, Any]]:
        """What `/recent` answers: the group's newest events with the Redis queue, else this process's."""
        if self._redis_url is None:
            return self.snapshot()
        from console_proxy.delivery.redis.client import REDIS_ERRORS, async_client  # the extra is optional
        from console_proxy.delivery.redis.queue import read_recent

        if self._client is None:
            self._client = async_client(self._redis_url)
        try:
            return [json.loads(row) for row in await read_recent(self._client)]
        except REDIS_ERRORS as exc:
            logger.warning("cannot read the recent events from redis (%s); showing this process's", type(exc).__name__)
            return self.snapshot()

    async def aclose(self) -> None:
        if self._client is not None:
            from console_proxy.delivery.redis.client import close_async_client

            client, self._client = self._client, None
            await close_async_client(client)
