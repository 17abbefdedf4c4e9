"""What the spool's thread writes in the caller's transaction: the events of a group of puts, and events leaving
(delivered, dead-lettered, expired), each counted with the change; and the acknowledgement that joins a group of
puts, so that both share one commit (docs/design.md, "The path of a batch")."""

from __future__ import annotations

import dataclasses
import itertools
import sqlite3
from collections import Counter
from typing import Any

from console_proxy.core.accounting import Answer
from console_proxy.delivery.spool.accounts import book, book_removed

# (event_id, json, bytes, topic, enqueued_at)
Row = tuple[str, str, int, str, float]
# Rows per INSERT statement. Each statement is one step of SQLite, and the spool's thread gives the GIL up for each
# step and waits to get it back while the event loop runs: one statement for many rows (a VALUES list) spares those
# waits, which cost more than the writing. At most ROWS_PER_INSERT distinct statements, each prepared once (the
# connection's statement cache holds 128).
ROWS_PER_INSERT = 64
_INSERT_EVENTS = "INSERT INTO events (event_id, json, bytes, topic, enqueued_at) VALUES "

# What leaves, by topic, in one pass: (topic, events, bytes, unclaimed events).
_REMOVED = "SELECT topic, count(*), sum(bytes), count(*) - count(batch_id) FROM events WHERE {where} GROUP BY topic"
DEAD_LETTER_COPY = (
    "INSERT INTO dead_letters (seq, event_id, json, batch_id, status, enqueued_at, dead_at, topic) "
    "SELECT seq, event_id, json, batch_id, ?, enqueued_at, ?, topic FROM events WHERE batch_id = ?"
)


@dataclasses.dataclass(frozen=True)
class Ack:
    """The collector took batch `batch_id` (counting it as `answer`, or None): handed to the spool's thread like a
    put, so that it shares the commit of the puts waiting with it."""

    batch_id: str
    answer: Answer | None = None


def insert(conn: sqlite3.Connection, puts: list[list[Row]]) -> None:
    """The rows of every put given, counted accepted (in all and per topic)."""
    rows = list(itertools.chain.from_iterable(puts))
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        conn.execute(_INSERT_EVENTS + ",".join(["(?, ?, ?, ?, ?)"] * len(chunk)), list(itertools.chain(*chunk)))
    topics = Counter(row[3] for row in rows)
    if topics:
        conn.execute("UPDATE counters SET value = value + ? WHERE name = 'accepted'", (topics.total(),))
    for topic, n in topics.items():
        book(conn, topic, {"accepted": n})


def remove(
    conn: sqlite3.Connection,
    where: str,
    args: tuple[Any, ...],
    counter: str,
    *,
    now: float,
    answer: Answer | None = None,
) -> tuple[int, int, int]:
    """Delete the events `where` says, counted under `counter` and, per topic, in the accounts (inside the caller's
    transaction). (events, bytes, of them unclaimed)."""
    removed = conn.execute(_REMOVED.format(where=where), args).fetchall()
    book_removed(conn, [(topic, n) for topic, n, _, _ in removed], counter, answer)
    n, size, unclaimed = (sum(row[i] for row in removed) for i in (1, 2, 3))
    conn.execute(f"DELETE FROM events WHERE {where}", args)
    conn.execute("UPDATE counters SET value = value + ? WHERE name = ?", (n, counter))
    if counter == "forwarded" and n:
        conn.execute("UPDATE counters SET value = ? WHERE name = 'last_delivery_at'", (now,))
    return n, size, unclaimed
