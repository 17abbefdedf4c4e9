"""The server's metrics: what is kept of each era's real message, and exact drop counts for the rest."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console_proxy import RouteRules
from console_proxy.hasura.identity import Identity
from console_proxy.sources.server import ShapeError, build_server_event, parse_server

from support.hasura_bodies import SERVER_BODY_UUID, V1_3, V1_ALPHA, V2_0, V2_NEWEST

GATE_UUID = "11111111-2222-4333-8444-555555555555"


@pytest.mark.parametrize(
    ("message", "topic", "version", "backend", "db_kind", "metrics", "dropped"),
    [
        (V1_ALPHA, "server_metrics_v2", "v1.0.0-alpha36", None, None, V1_ALPHA["data"]["metrics"],
         {"unread_field": 2}),
        (V1_3, "server_metrics_v2_test", "v1.3.3", None, None,
         {k: v for k, v in V1_3["data"]["metrics"].items() if k not in ("service_timings", "pg_version")},
         {"unread_field": 2, "unknown_metric": 2}),
        (V2_0, "server_metrics_v2", "v2.0.0-beta.1", None, "mssql",
         {"tables": 7, "views": 1, "enum_tables": 0, "relationships": {"manual": 1, "auto": 0},
          "permissions": {"select": 0, "insert": 0, "update": 0, "delete": 0, "roles": 0}, "event_triggers": 0,
          "functions": 0},
         {"unread_field": 5, "unknown_metric": 1}),
        (V2_NEWEST, "server_metrics_v2", "v2.36.0-ce", "postgres", "postgres",
         {k: v for k, v in V2_NEWEST["data"]["metrics"].items() if k != "service_timings"},
         {"unread_field": 5, "unknown_metric": 1, "unknown_ci": 1}),
    ],
)  # fmt: skip
def test_each_era_keeps_its_counts_version_and_backend(
    default_rules: RouteRules,
    message: dict[str, Any],
    topic: str,
    version: str,
    backend: str | None,
    db_kind: str | None,
    metrics: dict[str, Any],
    dropped: dict[str, int],
) -> None:
    report = parse_server(message, default_rules.server)
    assert (report.topic, report.server_version, report.backend_type, report.db_kind) == (
        topic,
        version,
        backend,
        db_kind,
    )
    assert report.metrics == metrics
    assert report.dropped_fields == Counter(dropped)


@pytest.mark.parametrize(
    ("ci", "kept", "dropped"),
    [
        ("TRAVIS", "TRAVIS", {}),
        ("CIRCLE", "CIRCLE", {}),
        ("UNKNOWN_VENDOR", "UNKNOWN_VENDOR", {}),
        (None, None, {}),
        # not one of the names the server's CI library has: another name, free text, another type
        ("GITHUB_ACTIONS", "other", {"unknown_ci": 1}),
        ("alice's laptop", "other", {"unknown_ci": 1}),
        (7, None, {"bad_ci": 1}),
    ],
)
def test_ci_is_kept_from_the_fixed_list(default_rules: RouteRules, ci: object, kept: str | None, dropped: Any) -> None:
    message = {"topic": "server_metrics_v2", "data": {"hasura_version": "v2.36.0", "ci": ci}}
    report = parse_server(message, default_rules.server)
    assert (report.ci, report.dropped_fields) == (kept, Counter(dropped))
    event = build_server_event(report, Identity(), now=datetime(2026, 1, 1, tzinfo=UTC), new_id=lambda: "id")
    assert event.get("ci") == kept and ("ci" in event) == (kept is not None)


def test_the_resource_row_is_dropped_whole(default_rules: RouteRules) -> None:
    row = {"server_metrics": {"resource_cpu": 2, "resource_memory": 1024, "resource_checker_error_code": None}}
    report = parse_server(row, default_rules.server)
    assert report.topic is None and report.metrics == {}
    assert report.dropped_fields == Counter()


@pytest.mark.parametrize(
    "message",
    [[], "server", {"topic": "console", "data": {}}, {"topic": "server_metrics_v2"},
     {"topic": "server_metrics_v2", "data": []}, {"topic": ["server"], "data": {}}, {"data": {}}],
)  # fmt: skip
def test_what_is_not_a_server_message_is_refused_whole(default_rules: RouteRules, message: object) -> None:
    with pytest.raises(ShapeError):
        parse_server(message, default_rules.server)


def test_wrong_types_and_out_of_range_counts_are_dropped_each_counted(default_rules: RouteRules) -> None:
    message = {
        "topic": "server_metrics_v2",
        "data": {
            "hasura_version": "v2.36.0-prodcustomersdb",
            "source_metadata": {"backend_type": "dataconnector", "db_kind": "acme_billing_sqlite"},
            "metrics": {
                "tables": -1, "views": 100_001, "enum_tables": 100_000, "functions": True, "event_triggers": 2.0,
                "remote_schemas": "3", "relationships": {"manual": 10**30, "auto": [1], "other": 1},
                "permissions": [1, 2], "actions": {"synchronous": None}, "native_queries": {}, "sql": "select 1",
            },
        },
    }  # fmt: skip
    report = parse_server(message, default_rules.server)
    assert report.server_version is None
    assert (report.backend_type, report.db_kind) == ("dataconnector", "other")
    assert report.metrics == {"enum_tables": 100_000}
    assert report.dropped_fields == Counter(
        {"bad_server_version": 1, "unknown_backend": 1, "negative_metric": 1, "metric_too_large": 2,
         "bad_metric": 5, "unknown_metric": 2}
    )  # fmt: skip


def test_the_outbound_event_carries_the_gates_identity_never_the_bodys(default_rules: RouteRules) -> None:
    report = parse_server(V2_NEWEST, default_rules.server)
    event = build_server_event(
        report,
        Identity(server_uuid=GATE_UUID, cli_uuid=None, server_version=None),
        now=datetime(2026, 11, 27, 19, 0, tzinfo=UTC),
        new_id=lambda: "e1",
    )
    assert event == {
        "event_id": "e1",
        "server_uuid": GATE_UUID,
        "server_version": "v2.36.0-ce",
        "backend_type": "postgres",
        "db_kind": "postgres",
        "ci": "other",  # GITHUB_ACTIONS is not a name of the server's CI library
        "metrics": {k: v for k, v in V2_NEWEST["data"]["metrics"].items() if k != "service_timings"},
        "timestamp": "2026-11-27T19:00:00.000Z",
    }
    assert SERVER_BODY_UUID not in json.dumps(event) and "GITHUB_ACTIONS" not in json.dumps(event)
    gate = Identity(server_uuid=GATE_UUID, server_version="v2.40.0")
    assert (
        build_server_event(report, gate, now=datetime(2026, 1, 1), new_id=lambda: "e2")["server_version"] == "v2.40.0"
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(
    ["tables", "views", "relationships", "permissions", "actions", "manual", "auto", "select", "source_metadata",
     "db_kind", "backend_type", "hasura_version", "version", "metrics", "CANARY"]
)  # fmt: skip
TREE = st.recursive(
    st.none() | st.integers() | st.just("CANARY") | st.text(max_size=8),
    lambda inner: st.dictionaries(KEYS, inner, max_size=6) | st.lists(inner, max_size=3),
    max_leaves=30,
)


@given(data=TREE, topic=st.sampled_from(["server", "server_metrics_v2", "server_test"]))
def test_no_string_of_the_sender_leaves_but_the_listed_names(
    default_rules: RouteRules, data: object, topic: str
) -> None:
    try:
        report = parse_server({"topic": topic, "data": data}, default_rules.server)
    except ShapeError:
        return
    schema = default_rules.server
    assert report.backend_type in {None, "other", *schema.backends}
    assert report.db_kind in {None, "other", *schema.backends}
    assert report.server_version is None or "CANARY" not in report.server_version
    for name, value in report.metrics.items():
        if isinstance(value, dict):
            assert name in schema.groups and set(value) <= schema.groups[name]
            assert all(type(v) is int and 0 <= v <= schema.max_count for v in value.values())
        else:
            assert name in schema.counts and type(value) is int and 0 <= value <= schema.max_count
