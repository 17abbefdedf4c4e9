"""The Hasura server's periodic metrics (POST /_telemetry/v1/server): which counts are kept. Pure, no I/O.

The server sends, once at start and every 24 hours, one message per database source:
`{"topic": "server_metrics_v2", "data": {"metadata_db_uid", "instance_uid", "hasura_version", "ci",
"source_metadata": {"db_uid", "backend_type", "db_kind", "db_version"}, "metrics": {...},
"experimental_features"}}` (v1.x: topic `server`, `db_uid` and `version` at the top of `data`), and
the newest servers one more message `{"server_metrics": {...}}` with no topic. Kept: the counts that
the rules' `server` section lists, the version, and backend_type/db_kind from the rules' list. The
server's own UUIDs are never read: the gate attaches its own.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol, TypedDict

from console_proxy.events import format_timestamp
from console_proxy.rules.sources import ServerSchema
from console_proxy.sources.values import enumerated, release

# Inbound topic -> the topic its counts are kept under. v1's `server` carries the same counts.
SERVER_TOPICS: Mapping[str, str] = {
    "server_metrics_v2": "server_metrics_v2",
    "server": "server_metrics_v2",
    "server_metrics_v2_test": "server_metrics_v2_test",
    "server_test": "server_metrics_v2_test",
}
# The newest servers' resource row (CPU and memory), sent beside the reports with no topic and no UUID.
RESOURCE_ROW = "server_metrics"

Metrics = dict[str, int | dict[str, int]]


class Attached(Protocol):
    """What the gate attaches (its Identity): never anything from the message."""

    @property
    def server_uuid(self) -> str | None: ...

    @property
    def server_version(self) -> str | None: ...


class ServerMetricsEvent(TypedDict):
    """One server report as forwarded under `server_metrics_v2` (DESIGN.md, "Added in 0.2")."""

    event_id: str
    server_uuid: str | None
    server_version: str | None
    backend_type: str | None
    db_kind: str | None
    metrics: Metrics
    timestamp: str


class ShapeError(ValueError):
    """A message that is not a server report at all (the whole body is refused with 400)."""


@dataclasses.dataclass
class ServerReport:
    """What is kept of one message; `topic` is None when nothing is (the resource row)."""

    topic: str | None
    server_version: str | None = None
    backend_type: str | None = None
    db_kind: str | None = None
    metrics: Metrics = dataclasses.field(default_factory=dict)
    # Every field left out, by reason; the report itself is kept.
    dropped_fields: Counter[str] = dataclasses.field(default_factory=Counter)


def parse_server(document: object, schema: ServerSchema) -> ServerReport:
    """Keep what may leave of one decoded server message; raise ShapeError when it is not one."""
    if not isinstance(document, dict):
        raise ShapeError("not an object")
    topic = document.get("topic")
    if topic is None and isinstance(document.get(RESOURCE_ROW), dict):
        report = ServerReport(topic=None)
        report.dropped_fields["resource_row"] += 1
        return report
    if not isinstance(topic, str) or topic not in SERVER_TOPICS:
        raise ShapeError("unknown topic")
    data = document.get("data")
    if not isinstance(data, dict):
        raise ShapeError("no data object")
    report = ServerReport(topic=SERVER_TOPICS[topic])
    dropped = report.dropped_fields
    for key, value in data.items():
        if key in ("hasura_version", "version"):  # v2 and v1
            report.server_version = release(value, "server_version", dropped) or report.server_version
        elif key == "source_metadata":
            _source_metadata(value, schema, report)
        elif key == "metrics":
            report.metrics = _metrics(value, schema, dropped)
        else:  # UUIDs, ci, experimental_features and anything new: never read
            dropped["unread_field"] += 1
    return report


def _source_metadata(value: object, schema: ServerSchema, report: ServerReport) -> None:
    dropped = report.dropped_fields
    if not isinstance(value, dict):
        if value is not None:
            dropped["bad_source_metadata"] += 1
        return
    for key, item in value.items():
        if key == "backend_type":
            report.backend_type = enumerated(item, schema.backends, "backend", dropped)
        elif key == "db_kind":  # a Data Connector's db_kind is the name its operator chose: free text
            report.db_kind = enumerated(item, schema.backends, "backend", dropped)
        else:  # db_uid, db_version
            dropped["unread_field"] += 1


def _metrics(value: object, schema: ServerSchema, dropped: Counter[str]) -> Metrics:
    kept: Metrics = {}
    if not isinstance(value, dict):
        dropped["bad_metric"] += 1
        return kept
    for name, item in value.items():
        if name in schema.counts:
            count = _count(item, schema.max_count, dropped)
            if count is not None:
                kept[name] = count
        elif name in schema.groups:
            group = _group(item, schema.groups[name], schema.max_count, dropped)
            if group:
                kept[name] = group
        else:  # service_timings, pg_version, anything new
            dropped["unknown_metric"] += 1
    return kept


def _group(value: object, names: frozenset[str], max_count: int, dropped: Counter[str]) -> dict[str, int]:
    kept: dict[str, int] = {}
    if value is None:  # remote schemas and actions are null on every source but the default one
        return kept
    if not isinstance(value, dict):
        dropped["bad_metric"] += 1
        return kept
    for name, item in value.items():
        if name not in names:
            dropped["unknown_metric"] += 1
            continue
        count = _count(item, max_count, dropped)
        if count is not None:
            kept[name] = count
    return kept


def _count(value: Any, max_count: int, dropped: Counter[str]) -> int | None:
    if value is None:
        return None
    if type(value) is not int:  # bool is an int subclass; 3.0 is not a count
        dropped["bad_metric"] += 1
        return None
    if value < 0:
        dropped["negative_metric"] += 1
        return None
    if value > max_count:
        dropped["metric_too_large"] += 1
        return None
    return value


def build_server_event(
    report: ServerReport, identity: Attached, *, now: datetime, new_id: Callable[[], str]
) -> ServerMetricsEvent:
    """The outbound event of a kept report: its counts and checked values, and the gate's own identity.

    The gate's server version wins over the report's, as for the console's.
    """
    return {
        "event_id": new_id(),
        "server_uuid": identity.server_uuid,
        "server_version": identity.server_version or report.server_version,
        "backend_type": report.backend_type,
        "db_kind": report.db_kind,
        "metrics": report.metrics,
        "timestamp": format_timestamp(now),
    }
