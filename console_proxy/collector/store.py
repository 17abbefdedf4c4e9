"""What a store does, written once over DB-API connections: one transaction per batch, events inserted whole.

The two stores (`duckdb_store`, `postgres_store`) differ in how they connect, how they read a JSON array of rows
into a table in one statement, and how they count what a statement changed; the rest is here. Exactly once is
the database's doing: every event table's key is `event_id`, and rows go in with ON CONFLICT DO NOTHING, so a
batch sent twice, two overlapping batches, or two collectors on one PostgreSQL store each event once, and what
the statement inserted is what was stored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from console_proxy.collector.house import ConsoleProxyError, SettingsError
from console_proxy.collector.intake import Intake
from console_proxy.collector.tables import ALL_TABLES, BAD_ROWS, BATCHES, EVENT_TABLES, Table

DEFAULT_FILE_NAME = "collector.duckdb"
EXPORT_FORMATS = ("parquet", "csv")


class StoreUnavailableError(ConsoleProxyError):
    """The store cannot take a write now (busy, locked, unreachable): answered 503 with Retry-After."""


class KeyReusedError(ConsoleProxyError):
    """An Idempotency-Key came again with another body: answered 422."""


@dataclasses.dataclass(frozen=True)
class Answer:
    """The collector's answer to one batch, once its rows are committed."""

    batch_id: str
    stored: int
    duplicates: int
    rejected: int
    replayed: bool = False

    def to_json(self) -> bytes:
        fields = {
            "batch_id": self.batch_id,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
        }
        return json.dumps(fields, separators=(",", ":")).encode()


class _LostRace(Exception):  # noqa: N818 -- a signal between two methods, never seen outside
    pass


def fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class Cursor(Protocol):
    def execute(self, query: Any, parameters: Any = ..., /) -> Any: ...


class SqlStore:
    """The shared body of both stores; a subclass gives `dialect`, `param`, `_transaction`, `_insert_json`,
    `_changed` and `_fetch`."""

    dialect = ""
    param = "?"
    description = ""

    def _transaction(self) -> contextlib.AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _insert_json(self, cur: Cursor, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
        raise NotImplementedError

    def _changed(self, cur: Cursor, result: Any) -> int:
        raise NotImplementedError

    def _fetch(self, cur: Cursor, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the store's connections."""

    def create_tables(self) -> None:
        """Create every table that does not exist yet (at start-up)."""
        with self._transaction() as cur:
            for table in ALL_TABLES:
                cur.execute(table.create(self.dialect))

    def ping(self) -> bool:
        try:
            with self._transaction() as cur:
                self._fetch(cur, "SELECT 1")
        except StoreUnavailableError:
            return False
        return True

    def write(self, intake: Intake, batch_id: str, key: str | None, print_: str, received_at: str) -> Answer:
        """Store one batch in one transaction and answer for it; KeyReusedError, StoreUnavailableError."""
        with self._transaction() as cur:
            if key is not None:
                earlier = self._answer_for(cur, key, print_)
                if earlier is not None:
                    return earlier
            stored = self._insert_json(cur, intake.table, intake.rows) if intake.table and intake.rows else 0
            if intake.bad:
                bad = [
                    {
                        "batch_id": batch_id,
                        "position": b.position,
                        "topic": intake.topic,
                        "reason": b.reason,
                        "row_json": b.row_json,
                        "received_at": received_at,
                    }
                    for b in intake.bad
                ]
                self._insert_json(cur, BAD_ROWS, bad)
            answer = Answer(batch_id, stored, len(intake.rows) - stored + intake.repeated, len(intake.bad))
            if key is not None:
                record = {
                    "idempotency_key": key,
                    "fingerprint": print_,
                    "answer": answer.to_json().decode(),
                    "received_at": received_at,
                }
                if self._insert_json(cur, BATCHES, [record]) == 0:
                    # Another collector took the same key while this one worked: its answer is the one.
                    raise _LostRace
            return answer

    def write_once(self, intake: Intake, batch_id: str, key: str | None, print_: str, received_at: str) -> Answer:
        """`write`, and when another collector answered the same Idempotency-Key first, its answer."""
        try:
            return self.write(intake, batch_id, key, print_, received_at)
        except _LostRace:
            with self._transaction() as cur:
                assert key is not None
                earlier = self._answer_for(cur, key, print_)
            if earlier is None:  # pragma: no cover - the row that made the insert fail is committed
                raise StoreUnavailableError("the batch's earlier answer cannot be read") from None
            return earlier

    def _answer_for(self, cur: Cursor, key: str, print_: str) -> Answer | None:
        rows = self._fetch(
            cur, f"SELECT fingerprint, answer FROM {BATCHES.name} WHERE idempotency_key = {self.param}", [key]
        )
        if not rows:
            return None
        if rows[0][0] != print_:
            raise KeyReusedError("this Idempotency-Key came before with another body")
        fields = json.loads(rows[0][1])
        return Answer(fields["batch_id"], fields["stored"], fields["duplicates"], fields["rejected"], replayed=True)

    def erase(self, installation: str) -> dict[str, int]:
        """Delete every row that names `installation` (a lower-case UUID); the count per table."""
        p = self.param
        counts: dict[str, int] = {}
        with self._transaction() as cur:
            for table in EVENT_TABLES:
                where = " OR ".join(f"{c} = {p}" for c in table.installation_columns)
                result = cur.execute(
                    f"DELETE FROM {table.name} WHERE {where}", [installation] * len(table.installation_columns)
                )
                counts[table.name] = self._changed(cur, result)
            result = cur.execute(f"DELETE FROM {BAD_ROWS.name} WHERE lower(row_json) LIKE {p}", [f"%{installation}%"])
            counts[BAD_ROWS.name] = self._changed(cur, result)
        return counts

    def expire(self, events_before: datetime | None, bookkeeping_before: datetime) -> dict[str, int]:
        """Delete events stamped before `events_before` (None: keep them), bad rows received before it, and
        Idempotency-Key answers received before `bookkeeping_before`; the count per table."""
        counts: dict[str, int] = {}
        with self._transaction() as cur:
            plan: list[tuple[Table, datetime]] = [(BATCHES, bookkeeping_before)]
            if events_before is not None:
                plan += [(table, events_before) for table in (*EVENT_TABLES, BAD_ROWS)]
            for table, before in plan:
                result = cur.execute(
                    f'DELETE FROM {table.name} WHERE "{table.time_column}" < {self.param}',
                    [before.replace(tzinfo=None)],
                )
                counts[table.name] = self._changed(cur, result)
        return counts

    def count(self, table: Table) -> int:
        with self._transaction() as cur:
            return int(self._fetch(cur, f"SELECT count(*) FROM {table.name}")[0][0])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read-only query (written with this store's `param`)."""
        with self._transaction() as cur:
            return self._fetch(cur, sql, params)

    def export(self, fmt: str, out: Path) -> list[Path]:
        raise NotImplementedError


def default_store_url(state_dir: Path) -> str:
    return f"duckdb:///{state_dir / DEFAULT_FILE_NAME}"


def display_store(url: str) -> str:
    """The store URL without its password, for start-up lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def duckdb_path(url: str) -> Path | None:
    """The file of a duckdb:///PATH URL (duckdb:////abs/path or duckdb:///relative/path), else None."""
    if not url.startswith("duckdb:///") or len(url) == len("duckdb:///"):
        return None
    return Path(url[len("duckdb:///") :]).expanduser()


def check_store_url(url: str, label: str) -> str:
    """`url` when it names a store; SettingsError (one sentence) otherwise."""
    text = url.strip()
    if duckdb_path(text) is not None:
        return text
    parts = urlsplit(text)
    if parts.scheme in ("postgresql", "postgres") and (parts.hostname or "host=" in parts.query):
        return text
    raise SettingsError(
        f"{label} is {json.dumps(url)}; expected duckdb:///PATH or postgresql://USER@HOST:PORT/DATABASE."
    )


@contextlib.contextmanager
def opened(url: str) -> Iterator[SqlStore]:
    """The store `url` names, its tables created, closed on the way out; StoreUnavailableError when it cannot open."""
    store = open_store(url)
    try:
        store.create_tables()
        yield store
    finally:
        store.close()


def open_store(url: str) -> SqlStore:
    path = duckdb_path(url)
    if path is not None:
        from console_proxy.collector.duckdb_store import DuckDBStore

        return DuckDBStore(path)
    from console_proxy.collector.postgres_store import PostgresStore

    return PostgresStore(url)
