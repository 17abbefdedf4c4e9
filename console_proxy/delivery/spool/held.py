"""What the spool holds in memory while its file has no room to record a claim or a delivery (a full disk).

SQLite needs free space to write anything, a DELETE included: each change goes to the WAL first, and a full WAL is
only emptied by a checkpoint that may need to grow the database file. So on a full disk the forwarder would stop:
nothing can be claimed, and what was delivered cannot be removed (docs/delivery.md, "A full disk"). Instead the
claims are made in memory (read-only queries: a batch_id of its own, the same one on every retry), and what the
collector took, or refused for good, is kept as done in memory too and left out of every later claim. `record()`
writes all of it in one transaction once there is room again. A restart before that sends those events again,
under a new batch_id with the same event_ids: delivery stays at least once.
"""

from __future__ import annotations

import dataclasses
import itertools
import sqlite3
from collections.abc import Iterable, Iterator

from console_proxy.core.accounting import Answer, TopicAccount, fates_of
from console_proxy.core.events import encode_envelope, new_id
from console_proxy.core.metrics import QueueStats
from console_proxy.delivery.queue import Batch
from console_proxy.delivery.spool.accounts import book
from console_proxy.delivery.spool.db import transaction

# Bound parameters per statement, well below SQLite's limit.
CHUNK = 500


@dataclasses.dataclass
class Held:
    """A batch claimed in memory: its events' seqs, oldest first."""

    batch_id: str
    topic: str
    seqs: list[int]
    size: int


@dataclasses.dataclass(frozen=True)
class Done:
    """A batch the collector answered, not yet removed from the file: `counter` is forwarded or dead_lettered."""

    batch_id: str
    counter: str
    seqs: list[int]
    size: int
    status: int
    at: float
    topic: str = ""
    answer: Answer | None = None

    def fates(self) -> dict[str, int]:
        """What its events became, by the collector's answer (docs/design.md, "End-to-end accounting")."""
        n = len(self.seqs)
        return fates_of(self.answer, n) if self.counter == "forwarded" else {self.counter: n}


def no_room(exc: BaseException) -> bool:
    """Whether SQLite refused a write for lack of space (SQLITE_FULL), not for another reason."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF == sqlite3.SQLITE_FULL) or "database or disk is full" in str(exc)


def _chunks(seqs: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(seqs), CHUNK):
        yield seqs[start : start + CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class HeldClaims:
    """Claims and answers the file could not record, for one Spool (used on its thread only)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.held: dict[str, Held] = {}
        self.done: list[Done] = []
        # Batches claimed in the file whose answer or split is held here: never sent again from the file.
        self.replaced: set[str] = set()
        # Per topic, the newest seq claimed in memory: every unclaimed event of that topic up to it is held or
        # done (claims take a topic's oldest events), so the next memory claim of it starts after it.
        self._after: dict[str, int] = {}
        # Every unclaimed event that is neither held nor done comes after this seq.
        self._low = 0
        # Totals of `done`, for the spool's readings (forwarded, dead_lettered, events, bytes, last delivery).
        self.pending = {"forwarded": 0, "dead_lettered": 0}
        self.pending_events = 0
        self.pending_bytes = 0
        self.last_delivery_at = 0.0

    def counted(self, stats: QueueStats) -> QueueStats:
        """A reading of the file with what is done here counted as what it is: forwarded or dead-lettered, not
        spooled."""
        if not self.pending_events:
            return stats
        topics = stats.topics
        if topics is not None:
            by_topic = {account.topic: account for account in topics}
            for done in self.done:
                account = by_topic.get(done.topic, TopicAccount(done.topic))
                by_topic[done.topic] = account.plus({**done.fates(), "queued": -len(done.seqs)})
            topics = tuple(by_topic[topic] for topic in sorted(by_topic))
        return dataclasses.replace(
            stats,
            forwarded=stats.forwarded + self.pending["forwarded"],
            dead_lettered=stats.dead_lettered + self.pending["dead_lettered"],
            spooled=stats.spooled - self.pending_events,
            spooled_bytes=stats.spooled_bytes - self.pending_bytes,
            last_delivery_at=max(stats.last_delivery_at or 0.0, self.last_delivery_at) or None,
            topics=topics,
        )

    @property
    def active(self) -> bool:
        return bool(self.held or self.done or self.replaced)

    def claim(self, conn: sqlite3.Connection, max_events: int) -> Batch | None:
        """A held batch (a retry), else one claimed in the file and not replaced, else a new one in memory: the
        oldest unclaimed event's topic, after what memory claimed of it. Reads only."""
        if self.held:
            return self._batch(conn, min(self.held.values(), key=lambda held: held.seqs[0]))
        skip = sorted(self.replaced)
        row = conn.execute(
            f"SELECT batch_id FROM events WHERE batch_id IS NOT NULL AND batch_id NOT IN ({_marks(len(skip))}) "
            "ORDER BY seq LIMIT 1",
            skip,
        ).fetchone()
        if row is not None:
            return _recorded(conn, row[0])
        after = " ".join(f"WHEN ? THEN {int(seq)}" for seq in self._after.values())
        bound = f"CASE topic {after} ELSE 0 END" if self._after else "0"
        first = conn.execute(
            f"SELECT seq, topic FROM events WHERE batch_id IS NULL AND seq > ? AND seq > {bound} ORDER BY seq LIMIT 1",
            (self._low, *self._after),
        ).fetchone()
        if first is None:
            return None
        self._low, topic = first
        rows = conn.execute(
            "SELECT seq, bytes FROM events WHERE batch_id IS NULL AND topic = ? AND seq > ? ORDER BY seq LIMIT ?",
            (topic, self._after.get(topic, 0), max_events),
        ).fetchall()
        held = Held(new_id(), topic, [seq for seq, _ in rows], sum(size for _, size in rows))
        self._after[topic] = held.seqs[-1]
        self.held[held.batch_id] = held
        return self._batch(conn, held)

    def adopt(self, conn: sqlite3.Connection, batch_id: str) -> Held:
        """Take over a batch claimed in the file (its answer or split cannot be recorded now)."""
        rows = conn.execute("SELECT seq, bytes, topic FROM events WHERE batch_id = ? ORDER BY seq", (batch_id,))
        listed = rows.fetchall()
        self.replaced.add(batch_id)
        return Held(batch_id, listed[0][2] if listed else "", [r[0] for r in listed], sum(r[1] for r in listed))

    def finish(self, held: Held, counter: str, status: int, at: float, answer: Answer | None = None) -> int:
        """The collector answered `held`: done, to be removed (and, for dead letters, copied aside) later."""
        self.held.pop(held.batch_id, None)
        self.done.append(Done(held.batch_id, counter, held.seqs, held.size, status, at, held.topic, answer))
        self.pending[counter] += len(held.seqs)
        self.pending_events += len(held.seqs)
        self.pending_bytes += held.size
        if counter == "forwarded":
            self.last_delivery_at = at
        return len(held.seqs)

    def split(self, held: Held) -> None:
        """Two held batches of new ids in place of `held`, first half first."""
        self.held.pop(held.batch_id, None)
        half = (len(held.seqs) + 1) // 2
        for part in (held.seqs[:half], held.seqs[half:]):
            if part:
                size = held.size * len(part) // max(1, len(held.seqs))
                piece = Held(new_id(), held.topic, part, size)
                self.held[piece.batch_id] = piece

    def record(self, conn: sqlite3.Connection) -> int:
        """Write what is held, in one transaction: remove what was done (dead letters copied aside first), claim the
        held batches under their ids. Raises sqlite3.Error, with nothing changed, when it cannot. Returns how many
        events were removed."""
        with transaction(conn):
            for done in self.done:
                for part in _chunks(done.seqs):
                    if done.counter == "dead_lettered":
                        conn.execute(
                            "INSERT INTO dead_letters (seq, event_id, json, batch_id, status, enqueued_at, dead_at, "
                            f"topic) SELECT seq, event_id, json, ?, ?, enqueued_at, ?, topic FROM events "
                            f"WHERE seq IN ({_marks(len(part))})",
                            (done.batch_id, done.status, done.at, *part),
                        )
                    conn.execute(f"DELETE FROM events WHERE seq IN ({_marks(len(part))})", part)
                conn.execute("UPDATE counters SET value = value + ? WHERE name = ?", (len(done.seqs), done.counter))
                book(conn, done.topic, done.fates())
                if done.counter == "forwarded":
                    conn.execute("UPDATE counters SET value = ? WHERE name = 'last_delivery_at'", (done.at,))
            for held in self.held.values():
                for part in _chunks(held.seqs):
                    conn.execute(
                        f"UPDATE events SET batch_id = ? WHERE seq IN ({_marks(len(part))})", (held.batch_id, *part)
                    )
        removed = self.pending_events
        self._reset()  # everything is in the file now
        return removed

    def _batch(self, conn: sqlite3.Connection, held: Held) -> Batch:
        texts = list(_texts(conn, held.seqs))
        return Batch(held.batch_id, held.topic, len(texts), encode_envelope(held.topic, held.batch_id, texts))


def _texts(conn: sqlite3.Connection, seqs: list[int]) -> Iterable[str]:
    select = "SELECT json FROM events WHERE seq IN ({}) ORDER BY seq"
    return itertools.chain.from_iterable(
        (text for (text,) in conn.execute(select.format(_marks(len(part))), part)) for part in _chunks(seqs)
    )


def _recorded(conn: sqlite3.Connection, batch_id: str) -> Batch:
    rows = conn.execute("SELECT topic, json FROM events WHERE batch_id = ? ORDER BY seq", (batch_id,)).fetchall()
    topic = rows[0][0]
    return Batch(batch_id, topic, len(rows), encode_envelope(topic, batch_id, (text for _, text in rows)))


def split_in_file(conn: sqlite3.Connection, batch_id: str) -> None:
    """Claim the events of a batch claimed in the file as two batches of new ids, first half first, in one
    transaction (sqlite3.OperationalError, nothing changed, when the file has no room for it)."""
    seqs = [seq for (seq,) in conn.execute("SELECT seq FROM events WHERE batch_id = ? ORDER BY seq", (batch_id,))]
    half = (len(seqs) + 1) // 2
    with transaction(conn):
        for part in (seqs[:half], seqs[half:]):
            if part:
                conn.execute(
                    "UPDATE events SET batch_id = ? WHERE batch_id = ? AND seq BETWEEN ? AND ?",
                    (new_id(), batch_id, part[0], part[-1]),
                )
