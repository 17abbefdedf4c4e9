"""The spool's SQLite file: schema, opening (WAL, a lock, corrupt files moved aside), the read-only reading."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from console_proxy.core.metrics import QueueStats
from console_proxy.delivery.spool.accounts import add_accounts, has_accounts, read_accounts

logger = logging.getLogger("console_proxy")

SPOOL_FILE_NAME = "spool.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, json TEXT NOT NULL,
    bytes INTEGER NOT NULL, enqueued_at REAL NOT NULL, batch_id TEXT, topic TEXT NOT NULL DEFAULT 'console');
CREATE INDEX IF NOT EXISTS events_claimed ON events(batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_age ON events(enqueued_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, json TEXT NOT NULL, batch_id TEXT NOT NULL,
    status INTEGER NOT NULL, enqueued_at REAL NOT NULL, dead_at REAL NOT NULL,
    topic TEXT NOT NULL DEFAULT 'console');
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value NUMERIC NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('accepted', 0), ('forwarded', 0), ('dead_lettered', 0), ('expired', 0),
    ('last_delivery_at', 0);
"""
# Spool files written before batches carried a topic: every event in them was a console event.
_TOPIC_COLUMN = "ALTER TABLE {table} ADD COLUMN topic TEXT NOT NULL DEFAULT 'console'"


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` ... `COMMIT`, rolled back when the body (or the commit) raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def connect(path: Path, *, readonly: bool = False, immutable: bool = False) -> sqlite3.Connection:
    # Quoted: a '#', '?' or '%' in the path would otherwise end or change the URI and name another file.
    target = f"file:{quote(str(path))}?mode=ro" + ("&immutable=1" if immutable else "") if readonly else str(path)
    conn = sqlite3.connect(target, uri=readonly, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def read_stats(conn: sqlite3.Connection) -> QueueStats:
    conn.execute("BEGIN")
    try:
        values = dict(conn.execute("SELECT name, value FROM counters").fetchall())
        spooled, spooled_bytes = conn.execute("SELECT count(*), coalesce(sum(bytes), 0) FROM events").fetchone()
        topics = read_accounts(conn)
    finally:
        conn.execute("COMMIT")
    last = float(values.get("last_delivery_at", 0))
    return QueueStats(
        accepted=int(values["accepted"]),
        forwarded=int(values["forwarded"]),
        dead_lettered=int(values["dead_lettered"]),
        expired=int(values["expired"]),
        spooled=int(spooled),
        spooled_bytes=int(spooled_bytes),
        last_delivery_at=last or None,
        topics=topics,
    )


def read_spool_stats(path: Path) -> QueueStats | None:
    """Read a spool file without writing to it (for `console-proxy status`); None when there is none."""
    if not path.exists():
        return None
    # Even read-only, SQLite creates the -wal and -shm files of a WAL database that no process has open. Without
    # a -wal file the spool was closed cleanly and nobody writes it: read it as the immutable file it then is.
    conn = connect(path, readonly=True, immutable=not path.with_name(path.name + "-wal").exists())
    try:
        return read_stats(conn)
    finally:
        conn.close()


def lock_spool(path: Path) -> int:
    """Lock the spool (until the returned descriptor is closed); OSError when another process holds it."""
    # One process per spool: the in-memory depth and claims assume a single writer.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise OSError("another process holds this spool") from None
    return fd


def open_spool(path: Path) -> sqlite3.Connection:
    """Open or create the spool file; a corrupt one is renamed `<name>.corrupt-<UTC time>` and replaced, loudly.

    Raises sqlite3.Error or OSError when the file cannot be opened for another reason (nothing is moved then).
    """
    try:
        return _open_file(path)
    except sqlite3.DatabaseError as exc:
        # OperationalError (locked, I/O, cannot open) says nothing about the file's contents: never move a good
        # spool aside for it. Anything else (not a database, malformed, a failed quick_check) is corruption.
        if isinstance(exc, sqlite3.OperationalError) or not path.exists():
            raise
        _move_aside(path, exc)
        return _open_file(path)


def _move_aside(path: Path, exc: Exception) -> None:
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            src.rename(aside.with_name(aside.name + suffix))
    logger.error(
        "SPOOL CORRUPT: %s could not be opened (%s); moved aside to %s and started an empty spool; "
        "the events in it will not be delivered",
        path,
        exc,
        aside,
    )


def _open_file(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise sqlite3.OperationalError("WAL mode unavailable")
        # A 202 promises delivery through power loss too, not only through a crash of this process:
        # with WAL, NORMAL survives kill -9 but may lose the last commits on power failure; FULL syncs the
        # WAL at every commit. Group commit keeps that to one fsync per group of waiting puts.
        conn.execute("PRAGMA synchronous = FULL")
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {check}")
        conn.executescript(_SCHEMA)
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a spool file of an older version up to the current schema, in one transaction: the topic columns
    (0.2), the per-topic accounts (0.3). No row is changed or lost."""
    missing = [
        table
        for table in ("events", "dead_letters")
        if "topic" not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    ]
    if not missing and has_accounts(conn):
        return
    with transaction(conn):
        for table in missing:
            conn.execute(_TOPIC_COLUMN.format(table=table))
        if not has_accounts(conn):
            add_accounts(conn)
