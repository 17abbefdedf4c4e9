"""The Redis queue's dead letters, for the operator: list them, put them back in the stream, or purge them.

Each change is one script, so it is safe while `console-proxy serve` processes use the queue.
"""

from __future__ import annotations

import json

from console_proxy.delivery.redis import scripts as redis_scripts
from console_proxy.delivery.redis.client import queue_keys, sync_client
from console_proxy.delivery.redis.queue import GROUP
from console_proxy.delivery.spool.dead_letters import DeadLetter, what_it_was


def list_redis_dead_letters(url: str) -> list[DeadLetter]:
    """The dead letters of the queue at `url`, oldest first."""
    keys = queue_keys()
    with sync_client(url) as client:
        rows = client.xrange(keys.dead)
    letters = []
    for _, fields in rows:
        event = json.loads(fields[b"e"])
        letters.append(
            DeadLetter(
                str(event.get("event_id")),
                int(fields[b"status"]),
                float(fields[b"at"]),
                *what_it_was(event),
            )
        )
    return letters


def change_redis_dead_letters(url: str, *, replay: bool) -> int:
    """Put every dead letter back in the stream (`replay`) or delete them all; how many."""
    keys = queue_keys()
    with sync_client(url) as client:
        script = client.register_script(redis_scripts.DEAD_LETTERS)
        reply = script(
            keys=[keys.stream, keys.counters, keys.batch_of, keys.dead], args=[keys.prefix, GROUP, int(replay)]
        )
    return int(reply[2])


def queue_exists(url: str) -> bool:
    """Whether the queue at `url` was ever used: its stream or its counters exist."""
    keys = queue_keys()
    with sync_client(url) as client:
        return bool(client.exists(keys.stream, keys.counters))
