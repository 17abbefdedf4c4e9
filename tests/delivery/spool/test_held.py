"""Claims and answers held in memory while the spool's file has no room: on a real SQLite spool file, read only
until `record()` writes them all in one transaction. (The full disk itself: tests/e2e/test_storage_faults.py.)"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from console_proxy.core.accounting import Answer, TopicAccount
from console_proxy.delivery.spool.accounts import book
from console_proxy.delivery.spool.db import open_spool, read_stats
from console_proxy.delivery.spool.held import HeldClaims, no_room


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    db = open_spool(tmp_path / "spool.db")
    rows = [(f"e{seq}", json.dumps({"n": seq}), 7, topic, 0.0) for seq, topic in enumerate("CCCCCKC", start=1)]
    db.executemany("INSERT INTO events (event_id, json, bytes, topic, enqueued_at) VALUES (?, ?, ?, ?, ?)", rows)
    db.execute("UPDATE counters SET value = 7 WHERE name = 'accepted'")
    return db


def events(batch: object) -> list[int]:
    body = json.loads(batch.body)  # type: ignore[attr-defined]
    return [event["n"] for event in body["data"]]


def test_claims_in_memory_take_each_topic_oldest_first_and_never_twice(conn: sqlite3.Connection) -> None:
    held = HeldClaims()
    first = held.claim(conn, 2)
    assert first is not None and (first.topic, events(first)) == ("C", [1, 2])
    again = held.claim(conn, 2)
    assert again is not None and (again.batch_id, events(again)) == (first.batch_id, [1, 2])  # a retry: the same
    assert held.finish(held.held[first.batch_id], "forwarded", 0, 100.0) == 2
    second = held.claim(conn, 2)
    assert second is not None and events(second) == [3, 4]
    held.split(held.held[second.batch_id])
    halves = []
    for _ in range(2):
        half = held.claim(conn, 2)
        assert half is not None and half.batch_id != second.batch_id
        halves.append(events(half))
        held.finish(held.held[half.batch_id], "dead_lettered", 400, 101.0)
    assert halves == [[3], [4]]
    third, fourth = held.claim(conn, 2), None
    assert third is not None and (third.topic, events(third)) == ("C", [5, 7])
    held.finish(held.held[third.batch_id], "forwarded", 0, 102.0)
    fourth = held.claim(conn, 2)
    assert fourth is not None and (fourth.topic, events(fourth)) == ("K", [6])
    assert held.claim(conn, 2) is not None  # K is held, not finished: its retry
    # Counted as what they are, though the file still holds them all.
    stats = held.counted(read_stats(conn))
    assert (stats.accepted, stats.forwarded, stats.dead_lettered, stats.spooled) == (7, 4, 2, 1)
    assert conn.execute("SELECT count(*) FROM events WHERE batch_id IS NOT NULL").fetchone() == (0,)


def test_record_writes_what_was_held_in_one_transaction(conn: sqlite3.Connection) -> None:
    held = HeldClaims()
    conn.execute("UPDATE events SET batch_id = 'R' WHERE seq = 1")  # claimed in the file before the disk filled
    recorded = held.claim(conn, 3)
    assert recorded is not None and (recorded.batch_id, events(recorded)) == ("R", [1])
    held.finish(held.adopt(conn, "R"), "forwarded", 0, 50.0)
    kept = held.claim(conn, 3)
    assert kept is not None and events(kept) == [2, 3, 4]
    refused = held.claim(conn, 3)
    assert refused is not None and refused.batch_id == kept.batch_id
    held.finish(held.held[kept.batch_id], "dead_lettered", 422, 51.0)
    pending = held.claim(conn, 3)
    assert pending is not None and events(pending) == [5, 7]
    assert held.record(conn) == 4
    assert not held.active
    assert conn.execute("SELECT seq, batch_id FROM events ORDER BY seq").fetchall() == [
        (5, pending.batch_id),
        (6, None),
        (7, pending.batch_id),
    ]
    assert conn.execute("SELECT seq, status, batch_id FROM dead_letters ORDER BY seq").fetchall() == [
        (2, 422, kept.batch_id),
        (3, 422, kept.batch_id),
        (4, 422, kept.batch_id),
    ]
    stats = read_stats(conn)
    assert (stats.accepted, stats.forwarded, stats.dead_lettered, stats.spooled, stats.last_delivery_at) == (
        7,
        1,
        3,
        3,
        50.0,
    )


@pytest.mark.parametrize(
    ("error", "full"),
    [
        (sqlite3.OperationalError("database or disk is full"), True),
        (sqlite3.OperationalError("disk I/O error"), False),
        (sqlite3.OperationalError("attempt to write a readonly database"), False),
    ],
)
def test_no_room_is_sqlite_full_only(error: sqlite3.Error, full: bool) -> None:
    assert no_room(error) is full


def test_answers_held_in_memory_are_accounted_as_they_will_be_written(conn: sqlite3.Connection) -> None:
    book(conn, "C", {"accepted": 6})
    book(conn, "K", {"accepted": 1})
    held = HeldClaims()
    first = held.claim(conn, 3)
    assert first is not None
    held.finish(held.held[first.batch_id], "forwarded", 0, 100.0, Answer(stored=2, duplicates=1, rejected=0))
    second = held.claim(conn, 1)
    assert second is not None
    held.finish(held.held[second.batch_id], "dead_lettered", 422, 101.0)
    expected = (
        TopicAccount("C", accepted=6, stored=2, duplicates=1, dead_lettered=1, queued=2),
        TopicAccount("K", accepted=1, queued=1),
    )
    assert held.counted(read_stats(conn)).topics == expected  # the file still holds them all
    held.record(conn)
    assert read_stats(conn).topics == expected  # and now it says so itself
