"""The spool's dead letters, for the operator: list them, put them back in the queue, or purge them.

Replaying and purging take the spool's lock, so they run while no `console-proxy serve` holds that spool.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from console_proxy.delivery.spool.accounts import book
from console_proxy.delivery.spool.db import connect, lock_spool, migrate


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """One event the collector refused for good: its original id, the refusal's status, when."""

    event_id: str
    status: int
    dead_at: float
    event_type: str
    url: str


def list_dead_letters(path: Path) -> list[DeadLetter]:
    """The dead letters of the spool at `path`, oldest first, read without writing; [] when there is no spool."""
    if not path.exists():
        return []
    # As `status` does: a spool without a -wal file was closed cleanly; reading it as immutable creates nothing.
    conn = connect(path, readonly=True, immutable=not path.with_name(path.name + "-wal").exists())
    try:
        rows = conn.execute("SELECT event_id, status, dead_at, json FROM dead_letters ORDER BY seq").fetchall()
    finally:
        conn.close()
    letters = []
    for event_id, status, dead_at, text in rows:
        event = json.loads(text)
        letters.append(DeadLetter(event_id, int(status), float(dead_at), *what_it_was(event)))
    return letters


def what_it_was(event: dict[str, Any]) -> tuple[str, str]:
    """How a dead letter is listed: a console event's type and route, a CLI event's command and flags, or
    `server_metrics` for a server report (its counts are not worth a line)."""
    if "command" in event:
        flags = event.get("flags") or []
        return str(event["command"]), " ".join(f"--{flag}" for flag in flags) or "-"
    if "metrics" in event:
        return "server_metrics", "-"
    return str(event.get("event_type")), str(event.get("url"))


def replay_dead_letters(path: Path, *, clock: Callable[[], float] = time.time) -> int:
    """Put every dead letter back in the queue with its original event id; how many. OSError when the spool is
    held by a running proxy."""
    return _change(path, replay=True, now=clock())


def purge_dead_letters(path: Path) -> int:
    """Delete every dead letter; how many. OSError when the spool is held by a running proxy."""
    return _change(path, replay=False, now=0.0)


def _change(path: Path, *, replay: bool, now: float) -> int:
    if not path.exists():
        return 0
    lock = lock_spool(path)
    try:
        conn = connect(path)
        try:
            migrate(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                (count,) = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
                if replay:
                    # Enqueued now: with their old time they could expire at once. The dead-lettered counter goes
                    # down by as many as go back, so accepted = forwarded + spooled + dead-lettered + expired holds.
                    conn.execute(
                        "INSERT INTO events (event_id, json, bytes, enqueued_at, topic) "
                        "SELECT event_id, json, length(CAST(json AS BLOB)), ?, topic FROM dead_letters ORDER BY seq",
                        (now,),
                    )
                    conn.execute("UPDATE counters SET value = value - ? WHERE name = 'dead_lettered'", (count,))
                    for topic, n in conn.execute("SELECT topic, count(*) FROM dead_letters GROUP BY topic").fetchall():
                        book(conn, topic, {"dead_lettered": -n})
                conn.execute("DELETE FROM dead_letters")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
    finally:
        os.close(lock)
    return int(count)
