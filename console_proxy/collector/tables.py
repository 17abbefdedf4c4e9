"""The tables of a store, one per kind of event, and their SQL in each dialect. Pure, no I/O.

Both stores hold the same tables with the same columns, so that one query (docs/collector.md) runs on either.
Each event table has the fields of its topic's events as the gate forwards them, plus the topic itself (a
development build's events sit beside production ones, told apart by `topic`), the batch it came in and the
collector's receive time.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping

from console_proxy.collector.house import CLI_TOPIC, CONSOLE_TEST_TOPIC, CONSOLE_TOPIC, SERVER_METRICS_TOPIC

SERVER_METRICS_TEST_TOPIC = SERVER_METRICS_TOPIC + "_test"
CLI_TEST_TOPIC = CLI_TOPIC + "_test"

# Column kinds and their type in each dialect.
_TYPES: Mapping[str, Mapping[str, str]] = {
    "duckdb": {
        "uuid": "UUID",
        "text": "VARCHAR",
        "timestamp": "TIMESTAMP",
        "json": "JSON",
        "texts": "VARCHAR[]",
        "bool": "BOOLEAN",
        "int": "INTEGER",
    },
    "postgresql": {
        "uuid": "uuid",
        "text": "text",
        "timestamp": "timestamp",
        "json": "jsonb",
        "texts": "text[]",
        "bool": "boolean",
        "int": "integer",
    },
}


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    kind: str
    required: bool = False


@dataclasses.dataclass(frozen=True)
class Table:
    """One table: its columns, its key, and the columns that name an installation (for erasure)."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    installation_columns: tuple[str, ...] = ()
    time_column: str = "timestamp"

    @functools.cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def create(self, dialect: str) -> str:
        """CREATE TABLE IF NOT EXISTS in `dialect` ("duckdb" or "postgresql")."""
        types = _TYPES[dialect]
        cols = [f'"{c.name}" {types[c.kind]}' + (" NOT NULL" if c.required else "") for c in self.columns]
        cols.append("PRIMARY KEY (" + ", ".join(f'"{k}"' for k in self.key) + ")")
        return f"CREATE TABLE IF NOT EXISTS {self.name} (" + ", ".join(cols) + ")"

    def row_struct(self) -> str:
        """DuckDB's STRUCT type of one row, to read a JSON array of rows in one statement."""
        types = _TYPES["duckdb"]
        return "STRUCT(" + ", ".join(f'"{c.name}" {types[c.kind]}' for c in self.columns) + ")"


def _columns(*spec: str) -> tuple[Column, ...]:
    """`name:kind` or `name:kind!` (required)."""
    out = []
    for item in spec:
        name, kind = item.split(":")
        out.append(Column(name, kind.rstrip("!"), kind.endswith("!")))
    return tuple(out)


_TAIL = ("timestamp:timestamp!", "batch_id:uuid!", "received_at:timestamp!")

CONSOLE_EVENTS = Table(
    "console_events",
    _columns(
        "event_id:uuid!",
        "topic:text!",
        "event_type:text!",
        "url:text!",
        "console_mode:text!",
        "console_type:text",
        "server_uuid:uuid",
        "cli_uuid:uuid",
        "server_version:text",
        *_TAIL,
    ),
    key=("event_id",),
    installation_columns=("server_uuid", "cli_uuid"),
)
SERVER_METRICS = Table(
    "server_metrics",
    _columns(
        "event_id:uuid!",
        "topic:text!",
        "server_uuid:uuid",
        "server_version:text",
        "backend_type:text",
        "db_kind:text",
        "ci:text",
        "metrics:json!",
        *_TAIL,
    ),
    key=("event_id",),
    installation_columns=("server_uuid",),
)
CLI_EVENTS = Table(
    "cli_events",
    _columns(
        "event_id:uuid!",
        "topic:text!",
        "cli_uuid:uuid",
        "server_uuid:uuid",
        "command:text!",
        "flags:texts!",
        "is_error:bool",
        "os_platform:text",
        "os_arch:text",
        "cli_version:text",
        "server_version:text",
        *_TAIL,
    ),
    key=("event_id",),
    installation_columns=("cli_uuid", "server_uuid"),
)
# A row that failed the vocabulary check: the batch and place it came in, why, and the row as sent (cut short).
BAD_ROWS = Table(
    "bad_rows",
    _columns(
        "batch_id:uuid!", "position:int!", "topic:text", "reason:text!", "row_json:text!", "received_at:timestamp!"
    ),
    key=("batch_id", "position"),
    time_column="received_at",
)
# The answer given to each Idempotency-Key, for a retry that lost its answer.
BATCHES = Table(
    "batches",
    _columns("idempotency_key:text!", "fingerprint:text!", "answer:text!", "received_at:timestamp!"),
    key=("idempotency_key",),
    time_column="received_at",
)

EVENT_TABLES = (CONSOLE_EVENTS, SERVER_METRICS, CLI_EVENTS)
ALL_TABLES = (*EVENT_TABLES, BAD_ROWS, BATCHES)

# Each topic the gate forwards, and the table its events go to.
TOPIC_TABLES: Mapping[str, Table] = {
    CONSOLE_TOPIC: CONSOLE_EVENTS,
    CONSOLE_TEST_TOPIC: CONSOLE_EVENTS,
    SERVER_METRICS_TOPIC: SERVER_METRICS,
    SERVER_METRICS_TEST_TOPIC: SERVER_METRICS,
    CLI_TOPIC: CLI_EVENTS,
    CLI_TEST_TOPIC: CLI_EVENTS,
}
PRODUCTION_TOPICS = frozenset({CONSOLE_TOPIC, SERVER_METRICS_TOPIC, CLI_TOPIC})
