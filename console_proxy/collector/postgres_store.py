"""The PostgreSQL store: a small pool of connections; any number of collectors may share one database.

Each batch's rows are read from one JSON parameter with jsonb_populate_recordset in one INSERT ... ON CONFLICT
DO NOTHING: the unique key decides, across collectors, which insert stores an event, and the statement's row
count says how many this one stored."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool

from console_proxy.collector.house import dumps
from console_proxy.collector.store import EXPORT_FORMATS, Cursor, SqlStore, StoreUnavailableError, display_store
from console_proxy.collector.tables import ALL_TABLES, Table

POOL_SIZE = 8
# How long a write waits for a connection (or the first connection is awaited) before it is answered 503.
POOL_WAIT_S = 5.0
CONNECT_TIMEOUT_S = 5

logger = logging.getLogger("console_proxy")


class PostgresStore(SqlStore):
    dialect = "postgresql"
    param = "%s"

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE, wait_s: float = POOL_WAIT_S) -> None:
        self.description = f"{display_store(url)} (PostgreSQL)"
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=wait_s,
            open=False,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_S},
            name="console-proxy-collector",
        )
        try:
            self._pool.open(wait=True, timeout=wait_s)
        except psycopg_pool.PoolTimeout:
            self._pool.close()
            raise StoreUnavailableError(f"the PostgreSQL store {display_store(url)} cannot be reached") from None

    def close(self) -> None:
        self._pool.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                yield cur
        except psycopg_pool.PoolTimeout:
            raise StoreUnavailableError("the PostgreSQL store is busy") from None
        except psycopg.Error as exc:
            logger.error("collector: the PostgreSQL store failed (%s)", type(exc).__name__)
            raise StoreUnavailableError("the PostgreSQL store failed") from None

    def _insert_json(self, cur: Cursor, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
        sql = (
            f"INSERT INTO {table.name} SELECT * FROM jsonb_populate_recordset(NULL::{table.name}, %s::jsonb)"
            " ON CONFLICT DO NOTHING"
        )
        cur.execute(sql, [dumps(list(rows)).decode()])
        return self._changed(cur, None)

    def _changed(self, cur: Cursor, result: Any) -> int:
        assert isinstance(cur, psycopg.Cursor)
        return max(cur.rowcount, 0)

    def _fetch(self, cur: Cursor, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        assert isinstance(cur, psycopg.Cursor)
        cur.execute(sql, list(params))
        return list(cur.fetchall())

    def export(self, fmt: str, out: Path) -> list[Path]:
        """Each table into `out/TABLE.parquet` or `out/TABLE.csv` (through DuckDB for parquet); the files written."""
        assert fmt in EXPORT_FORMATS
        out.mkdir(parents=True, exist_ok=True)
        written = []
        with tempfile.TemporaryDirectory() as scratch:
            for table in ALL_TABLES:
                target = out / f"{table.name}.{fmt}"
                text = Path(scratch) / f"{table.name}.csv" if fmt == "parquet" else target
                self._copy_csv(table, text)
                if fmt == "parquet":
                    _csv_to_parquet(table, text, target)
                written.append(target)
        return written

    def _copy_csv(self, table: Table, target: Path) -> None:
        select = ", ".join(
            f'to_json("{c.name}")::text AS "{c.name}"' if c.kind == "texts" else f'"{c.name}"' for c in table.columns
        )
        with self._transaction() as cur, open(target, "wb") as out:
            assert isinstance(cur, psycopg.Cursor)
            with cur.copy(f"COPY (SELECT {select} FROM {table.name}) TO STDOUT (FORMAT csv, HEADER)") as copy:
                for data in copy:
                    out.write(data)


def _csv_to_parquet(table: Table, source: Path, target: Path) -> None:
    import duckdb

    columns = "{" + ", ".join(f"'{c.name}': 'VARCHAR'" for c in table.columns) + "}"
    select = ", ".join(_typed(c.name, c.kind) for c in table.columns)
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT {select} FROM read_csv('{source}', header = true, columns = {columns}))"
            f" TO '{target}' (FORMAT parquet)"
        )


_DUCK_TYPES = {
    "uuid": "UUID",
    "timestamp": "TIMESTAMP",
    "json": "JSON",
    "texts": "VARCHAR[]",
    "bool": "BOOLEAN",
    "int": "INTEGER",
}


def _typed(name: str, kind: str) -> str:
    if kind == "text":
        return f'"{name}"'
    if kind == "texts":
        return f'CAST(CAST("{name}" AS JSON) AS VARCHAR[]) AS "{name}"'
    return f'CAST("{name}" AS {_DUCK_TYPES[kind]}) AS "{name}"'
