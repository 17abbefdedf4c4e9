"""One envelope split into the rows to store and the bad rows, each with its reason. Pure, no I/O."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from console_proxy.collector.envelope import Envelope
from console_proxy.collector.tables import TOPIC_TABLES, Table
from console_proxy.collector.vocabulary import Vocabulary, check_row

# A bad row is kept as it came, cut to this many characters: enough to see what a gate got wrong, not a store
# for whatever a sender likes.
MAX_BAD_ROW_CHARS = 4096
UNKNOWN_TOPIC = "unknown_topic"


@dataclasses.dataclass(frozen=True)
class BadRow:
    position: int
    reason: str
    row_json: str


@dataclasses.dataclass(frozen=True)
class Intake:
    """What to do with one batch: `rows` (checked, each event_id once) go to `table`; `bad` to the bad rows."""

    topic: str | None
    table: Table | None
    rows: list[dict[str, Any]]
    repeated: int  # rows whose event_id came earlier in the same batch: duplicates without asking the store
    bad: list[BadRow]


def _as_text(row: object) -> str:
    # ASCII escapes: a lone surrogate or a NUL character from a hostile sender is stored as text, not refused.
    return json.dumps(row, ensure_ascii=True, separators=(",", ":"))[:MAX_BAD_ROW_CHARS]


def _stored(row: dict[str, Any], table: Table, topic: str, batch_id: str, received_at: str) -> dict[str, Any]:
    out = {name: row.get(name) for name in table.column_names}
    for name in (*table.installation_columns, "event_id"):
        value = out[name]
        if isinstance(value, str):
            out[name] = value.lower()
    out["topic"], out["batch_id"], out["received_at"] = topic, batch_id, received_at
    return out


def take_in(
    envelope: Envelope, vocab: Vocabulary, *, now: datetime, received_at: str, oldest: datetime | None = None
) -> Intake:
    """Check every row of `envelope`; `oldest` (retention) refuses rows stamped before it."""
    table = TOPIC_TABLES.get(envelope.topic)
    if table is None:
        bad = [BadRow(i, UNKNOWN_TOPIC, _as_text(row)) for i, row in enumerate(envelope.rows)]
        return Intake(None, None, [], 0, bad)
    rows: list[dict[str, Any]] = []
    bad = []
    seen: set[str] = set()
    repeated = 0
    for position, row in enumerate(envelope.rows):
        reason = check_row(row, table, vocab, now, oldest)
        if reason is not None:
            bad.append(BadRow(position, reason, _as_text(row)))
            continue
        stored = _stored(row, table, envelope.topic, envelope.batch_id, received_at)
        if stored["event_id"] in seen:
            repeated += 1
            continue
        seen.add(stored["event_id"])
        rows.append(stored)
    return Intake(envelope.topic, table, rows, repeated, bad)
