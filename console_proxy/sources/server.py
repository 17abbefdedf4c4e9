"""The Hasura server's periodic metrics (POST /_telemetry/v1/server): which counts are kept. Pure, no I/O.

The server sends, once at start and every 24 hours, one message per database source:
`{"topic": "server_metrics_v2", "data": {"metadata_db_uid", "instance_uid", "hasura_version", "ci",
"source_metadata": {"db_uid", "backend_type", "db_kind", "db_version"}, "metrics": {...},
"experimental_features"}}` (v1.x: topic `server`, `db_uid` and `version` at the top of `data`), and
the newest servers one more message `{"server_metrics": {...}}` with no topic. Kept: the counts that
the rules' `server` section lists, the version, backend_type/db_kind from the rules' list, and `ci` from
the fixed list of CI names (core.events.CI_NAMES; another name is "other"). The server's own UUIDs are
never read: the gate attaches its own.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from console_proxy.core.errors import BatchError
from console_proxy.core.events import (
    CI_NAMES,
    Identity,
    OutboundEvent,
    ServerMetrics,
    ServerMetricsEvent,
    format_timestamp,
)
from console_proxy.rules.sources import ServerSchema
from console_proxy.sources.base import NO_MEDIA_TYPE, Built, Context, Source, decode_json
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

# What the server sends: Wreq posts its lazy ByteString as application/octet-stream.
# Annotated: sources/hasura_http.py reads it through an import cycle, where mypyc cannot infer it.
MEDIA_TYPES: frozenset[str] = frozenset({"application/json", "application/octet-stream", "text/plain", NO_MEDIA_TYPE})
MAX_BODY_BYTES = 65536


class ShapeError(ValueError):
    """A message that is not a server report at all (the whole body is refused with 400)."""


@dataclasses.dataclass
class ServerReport:
    """What is kept of one message; `topic` is None when nothing is (the resource row)."""

    topic: str | None
    server_version: str | None = None
    backend_type: str | None = None
    db_kind: str | None = None
    # The CI the server runs under, from CI_NAMES or "other"; None when it sent none (null: not under CI).
    ci: str | None = None
    metrics: ServerMetrics = dataclasses.field(default_factory=dict)
    # Every field left out, by reason; the report itself is kept.
    dropped_fields: Counter[str] = dataclasses.field(default_factory=Counter)


def parse_server(document: object, schema: ServerSchema) -> ServerReport:
    """Keep what may leave of one decoded server message; raise ShapeError when it is not one."""
    if not isinstance(document, dict):
        raise ShapeError("not an object")
    topic = document.get("topic")
    if topic is None and isinstance(document.get(RESOURCE_ROW), dict):
        return ServerReport(topic=None)  # CPU and memory: not a count the FAQ names
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
        elif key == "ci":  # a fixed list: CI names are not identifying, a free string could be
            report.ci = enumerated(value, CI_NAMES, "ci", dropped)
        else:  # UUIDs, experimental_features and anything new: never read
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


def _metrics(value: object, schema: ServerSchema, dropped: Counter[str]) -> ServerMetrics:
    kept: ServerMetrics = {}
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
    report: ServerReport, identity: Identity, *, now: datetime, new_id: Callable[[], str]
) -> ServerMetricsEvent:
    """The outbound event of a kept report: its counts and checked values, and the gate's own identity.

    The gate's server version wins over the report's, as for the console's.
    """
    event: ServerMetricsEvent = {
        "event_id": new_id(),
        "server_uuid": identity.server_uuid,
        "server_version": identity.server_version or report.server_version,
        "backend_type": report.backend_type,
        "db_kind": report.db_kind,
        "metrics": report.metrics,
        "timestamp": format_timestamp(now),
    }
    if report.ci is not None:
        event["ci"] = report.ci
    return event


def build(body: bytes, context: Context) -> Built:
    """The server source's parser: one message into a batch under its topic (the resource row: nothing)."""
    try:
        report = parse_server(decode_json(body), context.rules.server)
    except ShapeError:
        raise BatchError(400, "invalid server message", "bad_shape") from None
    if report.topic is None:
        return Built(dropped=Counter({"resource_row": 1}))
    event = build_server_event(report, context.identity, now=context.now, new_id=lambda: context.new_ids(1)[0])
    events: list[OutboundEvent] = [event]
    return Built(batches={report.topic: events}, fields_dropped=report.dropped_fields)


SOURCE = Source(name="server", build=build, media_types=MEDIA_TYPES, max_body_bytes=MAX_BODY_BYTES)
