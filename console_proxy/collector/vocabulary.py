"""The vocabulary a row must keep to be stored: what a gate with the same rules file could have sent. Pure.

Each check answers None for a good row, or the reason it is refused: a short fixed text naming the field and the
fault (`bad_url`, `unknown_field`), never a value from the row. A row is refused whole: one bad field is enough.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from console_proxy.collector.house import CI_NAMES, RouteRules, valid_uuid, valid_version
from console_proxy.collector.routes import RouteShapes, templates_of
from console_proxy.collector.tables import CLI_EVENTS, CONSOLE_EVENTS, SERVER_METRICS, Table

UNKNOWN_COMMAND = "UNKNOWN"
OTHER = "other"
CONSOLE_MODES = frozenset({"server", "cli"})
# The newest console's console_type, the four values the gate lets through (docs/consoles.md).
CONSOLE_TYPES = frozenset({"oss", "cloud", "pro", "pro-lite"})
# The gate's own timestamp: UTC, milliseconds, Z ([0-9], not \d: \d takes any Unicode digit).
TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
# Clocks differ; an event stamped further ahead than this is not a gate's.
MAX_CLOCK_SKEW = timedelta(days=1)

Row = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Everything the row checks read, compiled once from the rules."""

    rules: RouteRules
    routes: RouteShapes

    def action_ok(self, name: object) -> bool:
        """The `actions.unknown` token, or a name the gate sends as it is (on the same `allow` list)."""
        return isinstance(name, str) and (name == self.rules.unknown_action or self.rules.action_known(name))


def vocabulary_of(rules: RouteRules) -> Vocabulary:
    """The vocabulary of a loaded rules file (read again here for its templates: RouteRules keeps them compiled)."""
    document = yaml.safe_load(Path(rules.source).read_text(encoding="utf-8"))
    return Vocabulary(rules=rules, routes=RouteShapes(templates_of(document), rules.unknown))


# Columns the collector fills in itself, and fields an event carries that are not stored (a console event's
# `data` is always null).
_OWN_COLUMNS = frozenset({"topic", "batch_id", "received_at"})
_NOT_STORED: Mapping[str, frozenset[str]] = {CONSOLE_EVENTS.name: frozenset({"data"})}
_OPTIONAL = frozenset({"console_type", "ci"})


def _field_sets(table: Table) -> tuple[frozenset[str], frozenset[str]]:
    """The fields a row of `table` may have, and those it must have."""
    allowed = (frozenset(table.column_names) - _OWN_COLUMNS) | _NOT_STORED.get(table.name, frozenset())
    return allowed, allowed - _OPTIONAL


_FIELD_SETS = {table.name: _field_sets(table) for table in (CONSOLE_EVENTS, SERVER_METRICS, CLI_EVENTS)}


def _fields(row: Row, table: Table) -> str | None:
    allowed, required = _FIELD_SETS[table.name]
    keys = row.keys()
    if not keys <= allowed:
        return "unknown_field"
    if not required <= keys:
        return "missing_field"
    return None


def _uuid_or_null(value: object) -> bool:
    return value is None or valid_uuid(value) is not None


def _version_or_null(value: object) -> bool:
    return value is None or valid_version(value) is not None


def _named_or_null(value: object, known: frozenset[str]) -> bool:
    return value is None or (isinstance(value, str) and (value in known or value == OTHER))


def check_timestamp(value: object, now: datetime, oldest: datetime | None) -> str | None:
    if not isinstance(value, str) or not TIMESTAMP.fullmatch(value):
        return "bad_timestamp"
    try:
        when = datetime.fromisoformat(value)  # Python 3.11 reads the Z as UTC
    except ValueError:
        return "bad_timestamp"
    if when > now + MAX_CLOCK_SKEW:
        return "timestamp_in_future"
    if oldest is not None and when < oldest:
        return "older_than_retention"
    return None


def check_console(row: Row, vocab: Vocabulary) -> str | None:
    if not vocab.action_ok(row["event_type"]):
        return "bad_event_type"
    if row["url"] not in vocab.routes:
        return "bad_url"
    if row["console_mode"] not in CONSOLE_MODES:
        return "bad_console_mode"
    if "console_type" in row and row["console_type"] not in CONSOLE_TYPES:
        return "bad_console_type"
    if not _uuid_or_null(row["server_uuid"]):
        return "bad_server_uuid"
    if not _uuid_or_null(row["cli_uuid"]):
        return "bad_cli_uuid"
    if not _version_or_null(row["server_version"]):
        return "bad_server_version"
    if row["data"] is not None:
        return "bad_data"
    return None


def _count(value: object, max_count: int) -> bool:
    return type(value) is int and 0 <= value <= max_count


def check_server(row: Row, vocab: Vocabulary) -> str | None:
    schema = vocab.rules.server
    if not _uuid_or_null(row["server_uuid"]):
        return "bad_server_uuid"
    if not _version_or_null(row["server_version"]):
        return "bad_server_version"
    if not _named_or_null(row["backend_type"], schema.backends):
        return "bad_backend_type"
    if not _named_or_null(row["db_kind"], schema.backends):
        return "bad_db_kind"
    if "ci" in row and not _named_or_null(row["ci"], CI_NAMES):
        return "bad_ci"
    metrics = row["metrics"]
    if not isinstance(metrics, dict):
        return "bad_metrics"
    for name, value in metrics.items():
        if name in schema.counts:
            if not _count(value, schema.max_count):
                return "bad_metrics"
        elif name in schema.groups:
            names = schema.groups[name]
            if not isinstance(value, dict) or not value:
                return "bad_metrics"
            if any(k not in names or not _count(v, schema.max_count) for k, v in value.items()):
                return "bad_metrics"
        else:
            return "unknown_metric"
    return None


def check_cli(row: Row, vocab: Vocabulary) -> str | None:
    cli = vocab.rules.cli
    if not _uuid_or_null(row["cli_uuid"]):
        return "bad_cli_uuid"
    if not _uuid_or_null(row["server_uuid"]):
        return "bad_server_uuid"
    command, flags = row["command"], row["flags"]
    if not isinstance(command, str) or (command != UNKNOWN_COMMAND and command not in cli.commands):
        return "bad_command"
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags) or flags != sorted(set(flags)):
        return "bad_flags"
    if flags and (command == UNKNOWN_COMMAND or any(f not in cli.commands[command] for f in flags)):
        return "bad_flags"
    if row["is_error"] is not None and type(row["is_error"]) is not bool:
        return "bad_is_error"
    if not _named_or_null(row["os_platform"], cli.platforms):
        return "bad_os_platform"
    if not _named_or_null(row["os_arch"], cli.architectures):
        return "bad_os_arch"
    if not _version_or_null(row["cli_version"]):
        return "bad_cli_version"
    if not _version_or_null(row["server_version"]):
        return "bad_server_version"
    return None


CHECKS: Mapping[str, Callable[[Row, Vocabulary], str | None]] = {
    CONSOLE_EVENTS.name: check_console,
    SERVER_METRICS.name: check_server,
    CLI_EVENTS.name: check_cli,
}


def check_row(row: object, table: Table, vocab: Vocabulary, now: datetime, oldest: datetime | None) -> str | None:
    """None when `row` may be stored in `table`; else the reason it may not."""
    if not isinstance(row, dict):
        return "not_an_object"
    problem = _fields(row, table)
    if problem is not None:
        return problem
    if valid_uuid(row["event_id"]) is None:
        return "bad_event_id"
    return check_timestamp(row["timestamp"], now, oldest) or CHECKS[table.name](row, vocab)
