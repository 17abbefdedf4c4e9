"""The server's metrics and the CLI's events end to end over real sockets, beside the console's: local mode
and upstream mode with a real collector, canaries in every free field, exact drop counts, the opt-out."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import Receive, Scope, Send

from console_proxy import TelemetryMiddleware
from console_proxy.asgi.app import create_app
from console_proxy.asgi.runtime import Ack, TelemetryRuntime
from console_proxy.cli.main import main
from console_proxy.core.settings import Settings

from support.collector import Answer, Collector, read_metrics
from support.hasura_bodies import FLAT_FLAGS, FLAT_PATH, NESTED, V1_3, V1_ALPHA, V2_0, V2_NEWEST
from support.servers import uvicorn_server

SERVER = "/_telemetry/v1/server"
CLI = "/_telemetry/v1/cli"
EVENTS = "/_telemetry/v1/events"
GATE_SERVER = "11111111-2222-4333-8444-555555555555"
GATE_CLI = "22222222-3333-4444-8555-666666666666"
BODY_UUID = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"

# Every free field holds a canary: none of these may be found in anything that is kept or forwarded.
CANARIES = ("canary", BODY_UUID, "alice", "invoice_lines", "/home/", "acme", "5432")
SERVER_MESSAGE = {
    "topic": "server_metrics_v2",
    "data": {
        "metadata_db_uid": BODY_UUID, "instance_uid": BODY_UUID, "hasura_version": "v2.36.0", "ci": "CANARY_CI",
        "source_metadata": {"db_uid": BODY_UUID, "backend_type": "dataconnector",
                            "db_kind": "canary_acme_billing_connector", "db_version": "CANARY 15.4"},
        "metrics": {
            "tables": 12, "views": 2, "relationships": {"manual": 3, "auto": 9, "canary_rel": 1},
            "permissions": {"select": 4, "insert": 2, "update": 2, "delete": 1, "roles": 3},
            "service_timings": {"canary": "postgres://alice@db.acme:5432/billing"},
            "sql": "select * from accounting.invoice_lines", "event_triggers": -1, "functions": 10**12,
        },
        "experimental_features": ["canary_feature"],
    },
}  # fmt: skip
SERVER_KEPT = {
    "server_uuid": GATE_SERVER,
    "server_version": "v2.36.0",
    "backend_type": "dataconnector",
    "db_kind": "other",
    "ci": "other",  # CANARY_CI is no name of the server's CI library
    "metrics": {
        "tables": 12,
        "views": 2,
        "relationships": {"manual": 3, "auto": 9},
        "permissions": {"select": 4, "insert": 2, "update": 2, "delete": 1, "roles": 3},
    },
}
CLI_MESSAGE = {
    "topic": "cli", "uuid": BODY_UUID, "server_uuid": BODY_UUID, "execution_id": BODY_UUID,
    "os_platform": "linux", "os_arch": "amd64", "version": "v2.36.0", "server_version": "v2.36.0-ce",
    # a command line with values, as an embedding CLI might pass it: only the names of known flags stay
    "command": "hasura migrate apply --endpoint https://canary.acme.example:8080/?admin=alice --version 1700000000"
               " --canary-flag --admin-secret=canary-secret",
    "is_error": True,
    "error": {"Op": "commands.Execute", "Err": {
        "statement": "alter table accounting.invoice_lines add column customer_email text default 'alice@acme.example'",
        "url": "https://hasura.acme.example:8080/v2/query?canary=1 (10.0.0.5:8080)",
        "path": "/home/alice/acme-billing/migrations/default/1700000000_add_customer_email/up.sql"}},
    "payload": {"canary": "alice"},
}  # fmt: skip
CLI_KEPT = {
    "cli_uuid": GATE_CLI,
    "server_uuid": GATE_SERVER,
    "command": "hasura migrate apply",
    "flags": ["admin-secret", "endpoint", "version"],
    "is_error": True,
    "os_platform": "linux",
    "os_arch": "amd64",
    "cli_version": "v2.36.0",
    "server_version": "v2.36.0-ce",
}
CONSOLE_BATCH = {
    "events": [{"type": "Data/SET_TABLE", "route": "/console/data/acme/schema/alice/tables/canary/browse"}]
}


def cli_settings(tmp_path: Path, **overrides: Any) -> Settings:
    config = tmp_path / "hasura-config.json"
    config.write_text(json.dumps({"uuid": GATE_CLI}), encoding="utf-8")
    values: dict[str, Any] = {
        "mode": "cli",
        "cli_config": config,
        "server_uuid": GATE_SERVER,
        "state_dir": tmp_path / "state",
        "batch_max_delay_s": 0.05,
        "retry_base_s": 0.01,
        "retry_cap_s": 0.1,
        "shutdown_grace_s": 1.0,
    }
    return Settings(**{**values, **overrides})


def post_all_three(base: str) -> None:
    # As the real senders send them: the server's Wreq says octet-stream, the CLI's net/http no type at all.
    server = httpx.post(
        base + SERVER, content=json.dumps(SERVER_MESSAGE), headers={"content-type": "application/octet-stream"}
    )
    cli = httpx.post(base + CLI, content=json.dumps(CLI_MESSAGE))
    console = httpx.post(base + EVENTS, json=CONSOLE_BATCH)
    for response in (server, cli, console):
        assert (response.status_code, response.json()) == (202, {"accepted": 1, "dropped": 0})


def without_ids(event: dict[str, Any]) -> dict[str, Any]:
    assert len(event["event_id"]) == 36 and event["timestamp"].endswith("Z")
    return {k: v for k, v in event.items() if k not in ("event_id", "timestamp")}


# The gate's own random ids: a canary such as "5432" turns up in one of them now and then.
_GATES_IDS = re.compile(r'"(?:event_id|batch_id)": ?"[0-9a-f-]{36}"')


def assert_no_canary(text: str) -> None:
    text = _GATES_IDS.sub('"id": ""', text.lower())
    for canary in CANARIES:
        assert canary not in text, canary


def local_batches(state: Path) -> list[dict[str, Any]]:
    path = state / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_local_mode_keeps_each_source_under_its_own_topic_with_the_gates_uuids(tmp_path: Path) -> None:
    with uvicorn_server(create_app(cli_settings(tmp_path), env={})) as base:
        post_all_three(base)
        recent = httpx.get(base + "/_telemetry/v1/recent").text
    batches = local_batches(tmp_path / "state")
    assert [b["topic"] for b in batches] == ["server_metrics_v2", "cli", "console"]
    by_topic = {b["topic"]: b["data"] for b in batches}
    assert [without_ids(e) for e in by_topic["server_metrics_v2"]] == [SERVER_KEPT]
    assert [without_ids(e) for e in by_topic["cli"]] == [CLI_KEPT]
    assert by_topic["console"][0]["url"] == "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"
    assert_no_canary((tmp_path / "state" / "events.jsonl").read_text())
    assert_no_canary(recent)
    assert [without_ids(e) for e in json.loads(recent)][:2] == [
        {"topic": "server_metrics_v2", **SERVER_KEPT},
        {"topic": "cli", **CLI_KEPT},
    ]


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


def test_upstream_mode_forwards_one_topic_a_batch_and_test_topics_apart(tmp_path: Path, collector: Collector) -> None:
    settings = cli_settings(tmp_path, upstream=collector.url)
    with uvicorn_server(create_app(settings, env={})) as base:
        post_all_three(base)
        for path, message in (
            (SERVER, {**SERVER_MESSAGE, "topic": "server_metrics_v2_test"}),
            (SERVER, {**V1_ALPHA, "topic": "server_test"}),
            (SERVER, V1_ALPHA),
            (CLI, {**CLI_MESSAGE, "topic": "cli_test"}),
        ):
            response = httpx.post(base + path, json=message)
            assert (response.status_code, response.json()) == (202, {"accepted": 1, "dropped": 0})
        collector.wait_for_events(7)
    bodies = [r.body for r in collector.delivered()]
    assert sum(len(b["data"]) for b in bodies) == 7
    for received in collector.delivered():
        assert received.headers["idempotency-key"] == received.body["batch_id"]
    events: dict[str, list[dict[str, Any]]] = {}
    for body in bodies:
        events.setdefault(body["topic"], []).extend(without_ids(e) for e in body["data"])
    v1 = {**SERVER_KEPT, "server_version": "v1.0.0-alpha36", "backend_type": None, "db_kind": None,
          "ci": "TRAVIS", "metrics": V1_ALPHA["data"]["metrics"]}  # fmt: skip
    assert events == {
        "server_metrics_v2": [SERVER_KEPT, v1],
        "server_metrics_v2_test": [SERVER_KEPT, v1],
        "cli": [CLI_KEPT],
        "cli_test": [CLI_KEPT],
        "console": [without_ids(bodies_console) for bodies_console in _console_events(bodies)],
    }
    assert_no_canary(json.dumps(bodies))


def _console_events(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in bodies if b["topic"] == "console" for e in b["data"]]


ERAS = [(SERVER, m) for m in (V1_ALPHA, V1_3, V2_0, V2_NEWEST)] + [(CLI, m) for m in (NESTED, FLAT_PATH, FLAT_FLAGS)]


def test_real_messages_of_every_era_are_accepted(tmp_path: Path) -> None:
    with uvicorn_server(create_app(cli_settings(tmp_path), env={})) as base:
        for path, message in ERAS:
            response = httpx.post(base + path, json=message)
            assert (response.status_code, response.json()) == (202, {"accepted": 1, "dropped": 0})
    batches = local_batches(tmp_path / "state")
    assert [b["topic"] for b in batches] == [
        "server_metrics_v2", "server_metrics_v2_test", "server_metrics_v2", "server_metrics_v2",
        "cli_test", "cli", "cli",
    ]  # fmt: skip
    assert [b["data"][0]["command"] for b in batches[4:]] == [
        "hasura migrate apply",
        "hasura console",
        "hasura migrate apply",
    ]
    assert BODY_UUID not in json.dumps(batches)


def test_bad_input_gets_exact_drop_counts_and_never_a_5xx(tmp_path: Path) -> None:
    bad_server = {
        "topic": "server_metrics_v2",
        "data": {"hasura_version": "v2.36.0-canary", "source_metadata": {"backend_type": 7, "db_kind": "canary"},
                 "metrics": {"tables": "12", "views": -2, "functions": 10**9, "enum_tables": 2.5, "extra": 1}},
    }  # fmt: skip
    bad_cli = {"topic": "cli", "command": "hasura cloud deploy --canary", "is_error": "true", "os_arch": "canary"}
    refused = [
        (SERVER, b"{", "application/json", 400, b'{"error":"invalid JSON"}'),
        (SERVER, b'{"topic": "server_metrics_v2", "data": {"tables": NaN}}', "application/json", 400,
         b'{"error":"invalid JSON"}'),
        (SERVER, b'{"topic": "server", "topic": "server", "data": {}}', "application/json", 400,
         b'{"error":"invalid JSON"}'),
        (SERVER, b'{"topic": "console", "data": {}}', "application/json", 400, b'{"error":"invalid server message"}'),
        (SERVER, b"[]", "application/json", 400, b'{"error":"invalid server message"}'),
        (SERVER, b"", "application/json", 400, b'{"error":"empty body"}'),
        (SERVER, b"\xff\xfe", "application/json", 400, b'{"error":"invalid UTF-8"}'),
        (SERVER, b"{}", "text/html", 415, b'{"error":"unsupported media type"}'),
        (SERVER, b"[" * 70000, "application/json", 413, b'{"error":"body too large"}'),
        (CLI, b'{"command": "hasura version"}', "application/json", 400, b'{"error":"invalid CLI message"}'),
        (CLI, b'"cli"', "application/json", 400, b'{"error":"invalid CLI message"}'),
        (CLI, b"[" * 5000 + b"]" * 5000, "application/json", 400, b'{"error":"nesting too deep"}'),
        (CLI, b"{}", "image/png", 415, b'{"error":"unsupported media type"}'),
    ]  # fmt: skip
    with uvicorn_server(create_app(cli_settings(tmp_path), env={})) as base:
        assert httpx.post(base + SERVER, json=bad_server).json() == {"accepted": 1, "dropped": 0}
        assert httpx.post(base + CLI, json=bad_cli).json() == {"accepted": 1, "dropped": 0}
        row = httpx.post(base + SERVER, json={"server_metrics": {"resource_cpu": 2, "resource_memory": 4}})
        assert (row.status_code, row.json()) == (202, {"accepted": 0, "dropped": 1})
        for path, body, ctype, status, answer in refused:
            response = httpx.post(base + path, content=body, headers={"content-type": ctype})
            assert (response.status_code, response.content) == (status, answer), (path, body[:40])
        assert httpx.get(base + SERVER).status_code == 405
        values = read_metrics(httpx.get(base + "/metrics").text)
    kept = [b["data"][0] for b in local_batches(tmp_path / "state")]
    assert [without_ids(e) for e in kept] == [
        {"server_uuid": GATE_SERVER, "server_version": None, "backend_type": None, "db_kind": "other",
         "metrics": {}},
        {"cli_uuid": GATE_CLI, "server_uuid": GATE_SERVER, "command": "UNKNOWN", "flags": [], "is_error": None,
         "os_platform": None, "os_arch": "other", "cli_version": None, "server_version": None},
    ]  # fmt: skip
    assert {k: v for k, v in values.items() if k.startswith("console_proxy_fields_dropped_total")} == {
        "console_proxy_fields_dropped_total{reason=bad_server_version,source=server}": 1,
        "console_proxy_fields_dropped_total{reason=bad_backend,source=server}": 1,
        "console_proxy_fields_dropped_total{reason=unknown_backend,source=server}": 1,
        "console_proxy_fields_dropped_total{reason=bad_metric,source=server}": 2,
        "console_proxy_fields_dropped_total{reason=negative_metric,source=server}": 1,
        "console_proxy_fields_dropped_total{reason=metric_too_large,source=server}": 1,
        "console_proxy_fields_dropped_total{reason=unknown_metric,source=server}": 1,
        "console_proxy_fields_dropped_total{reason=unknown_command,source=cli}": 1,
        "console_proxy_fields_dropped_total{reason=bad_is_error,source=cli}": 1,
        "console_proxy_fields_dropped_total{reason=unknown_os_arch,source=cli}": 1,
    }
    assert values["console_proxy_events_dropped_total{reason=resource_row,source=server}"] == 1
    assert values["console_proxy_events_received_total{source=server}"] == 2
    assert values["console_proxy_events_accepted_total{source=cli}"] == 1
    rejected = {k: v for k, v in values.items() if k.startswith("console_proxy_batches_rejected_total")}
    assert rejected == {
        "console_proxy_batches_rejected_total{reason=invalid_json,source=server}": 3,
        "console_proxy_batches_rejected_total{reason=bad_shape,source=server}": 2,
        "console_proxy_batches_rejected_total{reason=empty_body,source=server}": 1,
        "console_proxy_batches_rejected_total{reason=invalid_utf8,source=server}": 1,
        "console_proxy_batches_rejected_total{reason=unsupported_media_type,source=server}": 1,
        "console_proxy_batches_rejected_total{reason=body_too_large,source=server}": 1,
        "console_proxy_batches_rejected_total{reason=bad_shape,source=cli}": 2,
        "console_proxy_batches_rejected_total{reason=too_deep,source=cli}": 1,
        "console_proxy_batches_rejected_total{reason=unsupported_media_type,source=cli}": 1,
    }


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)
FIELDS = st.fixed_dictionaries(
    {"topic": st.sampled_from(["server", "server_metrics_v2", "cli", "cli_test", "x"])},
    optional={"data": JSON, "metrics": JSON, "command": JSON, "is_error": JSON, "source_metadata": JSON},
)


def test_no_message_makes_either_endpoint_answer_5xx(tmp_path: Path) -> None:
    with uvicorn_server(create_app(cli_settings(tmp_path), env={})) as base, httpx.Client(base_url=base) as client:

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(message=FIELDS | JSON, path=st.sampled_from([SERVER, CLI]))
        def post(message: object, path: str) -> None:
            response = client.post(path, json=message)
            assert response.status_code in (202, 400), response.text

        post()


OFF = [
    ({"enable_telemetry": False}, {}),
    ({}, {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "false"}),
    ({}, {"DO_NOT_TRACK": "1"}),
    ({"config": {"uuid": GATE_CLI, "enable_telemetry": False}}, {}),
]


@pytest.mark.parametrize("upstream", [False, True])
@pytest.mark.parametrize(("overrides", "env"), OFF)
def test_telemetry_off_keeps_and_sends_none_of_the_three(
    tmp_path: Path, collector: Collector, upstream: bool, overrides: dict[str, Any], env: dict[str, str]
) -> None:
    overrides = dict(overrides)  # the table is shared between the parametrized runs
    config = overrides.pop("config", None)
    settings = cli_settings(tmp_path, upstream=collector.url if upstream else None, **overrides)
    if config is not None:
        assert settings.cli_config is not None
        settings.cli_config.write_text(json.dumps(config), encoding="utf-8")
    app = create_app(settings, env=env)
    with uvicorn_server(app) as base:
        assert httpx.get(base + "/_telemetry/v1/status").json()["enabled"] is False
        for path, message in ((SERVER, SERVER_MESSAGE), (CLI, CLI_MESSAGE), (EVENTS, CONSOLE_BATCH)):
            response = httpx.post(base + path, json=message)
            assert (response.status_code, response.content) == (204, b"")
        assert httpx.get(base + "/_telemetry/v1/recent").json() == []
    assert local_batches(tmp_path / "state") == []
    assert not (tmp_path / "state" / "spool.db").exists()
    assert collector.requests == []


class Inner:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.mark.anyio
async def test_a_cli_or_server_embedding_the_gate_records_through_the_python_api(tmp_path: Path) -> None:
    middleware = TelemetryMiddleware(Inner(), runtime=TelemetryRuntime(cli_settings(tmp_path), env={}))
    async with middleware.running() as runtime:
        assert await runtime.record_server_metrics(SERVER_MESSAGE) == Ack(1, 0)
        ack = await runtime.record_cli_command(
            "hasura migrate apply --endpoint https://canary.acme.example --version 1700000000",
            is_error=False,
            os_platform="darwin",
            os_arch="arm64",
            cli_version="v2.36.0",
        )
        assert ack == Ack(1, 0)
        assert await runtime.record_cli_command("hasura version", is_error=False, test=True) == Ack(1, 0)
        with pytest.raises(Exception, match="invalid server message"):
            await runtime.record_server_metrics({"topic": "console"})
    batches = local_batches(tmp_path / "state")
    assert [b["topic"] for b in batches] == ["server_metrics_v2", "cli", "cli_test"]
    assert [without_ids(b["data"][0]) for b in batches] == [
        SERVER_KEPT,
        {**CLI_KEPT, "flags": ["endpoint", "version"], "is_error": False, "os_platform": "darwin", "os_arch": "arm64",
         "server_version": None},
        {**CLI_KEPT, "command": "hasura version", "flags": [], "is_error": False, "os_platform": None,
         "os_arch": None, "cli_version": None, "server_version": None},
    ]  # fmt: skip
    assert_no_canary(json.dumps(batches))

    (tmp_path / "off").mkdir()
    off = TelemetryMiddleware(
        Inner(), runtime=TelemetryRuntime(cli_settings(tmp_path / "off", enable_telemetry=False), env={})
    )
    async with off.running() as runtime:
        assert await runtime.record_server_metrics(SERVER_MESSAGE) is None
        assert await runtime.record_cli_command("hasura version", is_error=False) is None
    assert local_batches(tmp_path / "off" / "state") == []


def test_refused_server_and_cli_batches_are_dead_lettered_listed_and_replayed(
    tmp_path: Path, collector: Collector
) -> None:
    collector.answer(Answer(400), Answer(400))
    settings = cli_settings(tmp_path, upstream=collector.url)
    with uvicorn_server(create_app(settings, env={})) as base:
        assert httpx.post(base + SERVER, json=SERVER_MESSAGE).status_code == 202
        collector_requests_until(collector, 1)
        assert httpx.post(base + CLI, json=CLI_MESSAGE).status_code == 202
        collector_requests_until(collector, 2)
        wait_for_metric(base, "console_proxy_events_dead_lettered_total", 2)
    state = str(tmp_path / "state")
    listed = CliRunner().invoke(main, ["dead-letters", "list", "--state-dir", state], env={"HOME": str(tmp_path)})
    assert listed.exit_code == 0
    assert [line.split(" ", 3)[1:2] + line.split(" ", 3)[3:] for line in listed.stdout.splitlines()] == [
        ["400", "server_metrics -"],
        ["400", "hasura migrate apply --admin-secret --endpoint --version"],
    ]
    assert_no_canary(listed.stdout)
    replayed = CliRunner().invoke(main, ["dead-letters", "replay", "--state-dir", state], env={"HOME": str(tmp_path)})
    assert replayed.exit_code == 0
    with uvicorn_server(create_app(settings, env={})):
        delivered = collector.wait_for_events(2)
    assert sorted(b.body["topic"] for b in collector.delivered()) == ["cli", "server_metrics_v2"]
    assert [without_ids(e) for e in sorted(delivered, key=lambda e: "command" in e)] == [SERVER_KEPT, CLI_KEPT]


def collector_requests_until(collector: Collector, n: int) -> None:
    deadline = time.monotonic() + 15
    while len(collector.requests) < n:
        assert time.monotonic() < deadline, "the collector never got the batch"
        time.sleep(0.02)


def wait_for_metric(base: str, name: str, value: float) -> None:
    deadline = time.monotonic() + 15
    while read_metrics(httpx.get(base + "/metrics").text).get(name) != value:
        assert time.monotonic() < deadline, f"{name} never reached {value}"
        time.sleep(0.02)
