"""The spool's end-to-end accounting per topic (docs/design.md, "End-to-end accounting"): the `accounts` table,
written in the same transaction as the change it counts, and read with the events still queued."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping

from console_proxy.core.accounting import Answer, TopicAccount, accounts, fates_of

_TABLE = """
CREATE TABLE accounts (
    topic TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (topic, name)) WITHOUT ROWID
"""
_ADD = (
    "INSERT INTO accounts (topic, name, value) VALUES (?, ?, ?) "
    "ON CONFLICT (topic, name) DO UPDATE SET value = value + excluded.value"
)


def has_accounts(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'accounts'").fetchone() is not None


def add_accounts(conn: sqlite3.Connection) -> None:
    """Create the table in a spool file of an older version (inside the caller's transaction). What it holds is
    accounted from then on: its queued events and dead letters count as accepted; what it delivered before is
    only in its lifetime `forwarded` counter, which has no topic."""
    conn.execute(_TABLE)
    for table, fate in (("events", None), ("dead_letters", "dead_lettered")):
        for topic, n in conn.execute(f"SELECT topic, count(*) FROM {table} GROUP BY topic").fetchall():
            book(conn, topic, {"accepted": n, **({fate: n} if fate else {})})


def book(conn: sqlite3.Connection, topic: str, changes: Mapping[str, int]) -> None:
    """Add `changes` (by count name) to `topic`'s figures."""
    conn.executemany(_ADD, [(topic, name, n) for name, n in changes.items() if n])


def book_removed(
    conn: sqlite3.Connection, removed: Iterable[tuple[str, int]], counter: str, answer: Answer | None
) -> None:
    """Events removed from the queue, by topic: delivered (`counter` forwarded: the collector's counts, or
    uncounted), dead-lettered or expired."""
    for topic, n in removed:
        if n:
            book(conn, topic, fates_of(answer, n) if counter == "forwarded" else {counter: n})


def read_accounts(conn: sqlite3.Connection) -> tuple[TopicAccount, ...] | None:
    """Every topic's figures (inside the caller's read transaction); None in a file without the table yet."""
    if not has_accounts(conn):
        return None
    queued = dict(conn.execute("SELECT topic, count(*) FROM events GROUP BY topic").fetchall())
    return accounts(conn.execute("SELECT topic, name, value FROM accounts").fetchall(), queued)
