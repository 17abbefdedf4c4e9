"""The DuckDB store: one embedded file, one connection, one writer at a time (DuckDB locks the file for one
process). Each batch's rows are read from one JSON text into the table in one statement: a row at a time is
about a hundred times slower (bench/README.md)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from console_proxy.collector.house import dumps
from console_proxy.collector.store import EXPORT_FORMATS, Cursor, SqlStore, StoreUnavailableError
from console_proxy.collector.tables import ALL_TABLES, Table

# How long a write waits for the one connection before the batch is answered 503 with Retry-After.
LOCK_WAIT_S = 5.0

logger = logging.getLogger("console_proxy")


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class DuckDBStore(SqlStore):
    dialect = "duckdb"
    param = "?"

    def __init__(self, path: Path, *, lock_wait_s: float = LOCK_WAIT_S) -> None:
        self.path = path
        self.description = f"duckdb:///{path} (DuckDB file)"
        self._lock = threading.Lock()
        self._lock_wait_s = lock_wait_s
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(str(path))
        except (duckdb.Error, OSError) as exc:
            raise StoreUnavailableError(f"the DuckDB file {path} cannot be opened ({_first_line(exc)})") from None
        self._inserts: dict[str, str] = {}

    def close(self) -> None:
        with self._lock:
            self._con.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        if not self._lock.acquire(timeout=self._lock_wait_s):
            raise StoreUnavailableError("the DuckDB store is busy")
        try:
            self._con.execute("BEGIN TRANSACTION")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")
        except duckdb.Error as exc:
            logger.error("collector: the DuckDB store failed (%s)", type(exc).__name__)
            raise StoreUnavailableError("the DuckDB store failed") from None
        finally:
            self._lock.release()

    def _insert_json(self, cur: Cursor, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
        sql = self._inserts.get(table.name)
        if sql is None:
            sql = (
                f"INSERT INTO {table.name} BY NAME SELECT unnest(CAST(CAST(? AS JSON) AS {table.row_struct()}[]),"
                " recursive := true) ON CONFLICT DO NOTHING"
            )
            self._inserts[table.name] = sql
        return int(cur.execute(sql, [dumps(list(rows)).decode()]).fetchall()[0][0])

    def _changed(self, cur: Cursor, result: Any) -> int:
        return int(result.fetchall()[0][0])

    def _fetch(self, cur: Cursor, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = cur.execute(sql, list(params)).fetchall()
        return rows

    def export(self, fmt: str, out: Path) -> list[Path]:
        """Each table into `out/TABLE.parquet` or `out/TABLE.csv`; the files written."""
        assert fmt in EXPORT_FORMATS
        out.mkdir(parents=True, exist_ok=True)
        written = []
        with self._transaction() as cur:
            for table in ALL_TABLES:
                target = out / f"{table.name}.{fmt}"
                select = ", ".join(
                    _csv_column(c.name, c.kind) if fmt == "csv" else f'"{c.name}"' for c in table.columns
                )
                options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER"
                cur.execute(f"COPY (SELECT {select} FROM {table.name}) TO {_literal(target)} ({options})")
                written.append(target)
        return written


def _csv_column(name: str, kind: str) -> str:
    # Lists as JSON arrays, as the PostgreSQL store's export writes them.
    return f'CAST(to_json("{name}") AS VARCHAR) AS "{name}"' if kind == "texts" else f'"{name}"'


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
