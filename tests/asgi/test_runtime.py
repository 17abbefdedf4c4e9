"""The telemetry runtime on its own: start and stop, the one way in for a batch, budgets, refusals and their counts.

A real local event file under tmp_path is the sink unless a test needs a sink that refuses; no ASGI, no socket.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from console_proxy.asgi.runtime import Ack, TelemetryRuntime
from console_proxy.core.errors import BatchError, SinkRefused
from console_proxy.core.events import OutboundEvent
from console_proxy.core.settings import Settings
from console_proxy.sources import HTTP_SOURCES, WEBSOCKET_SOURCE
from console_proxy.sources.base import MAX_BODY_BYTES

pytestmark = pytest.mark.anyio

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
NOW = datetime(2026, 12, 2, 10, 0, 0, 123000, tzinfo=UTC)
EVENTS = HTTP_SOURCES["/_telemetry/v1/events"]


def runtime_for(tmp_path: Path, **extra: Any) -> TelemetryRuntime:
    settings = Settings(state_dir=tmp_path / "state", server_uuid=SERVER_UUID, **extra)
    return TelemetryRuntime(settings, env={}, clock=lambda: NOW)


def kept(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "state" / "events.jsonl"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [event for line in lines for event in json.loads(line)["data"]]


def batch(*events: tuple[str, str]) -> bytes:
    return json.dumps({"events": [{"type": t, "route": r, "payload": {"secret": 1}} for t, r in events]}).encode()


def counter(runtime: TelemetryRuntime, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in runtime.metrics.render().decode().splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_batch_is_kept_anonymized_with_the_identity_and_the_receive_time(tmp_path: Path) -> None:
    async with runtime_for(tmp_path).running() as runtime:
        ack = await runtime.ingest(EVENTS, batch(("Data/SET_TABLE", "/console/data/db/schema/public/tables/t/browse")))
        assert ack == Ack(accepted=1, dropped=0)
        assert ack.body() == b'{"accepted":1,"dropped":0}'
        [recent] = runtime.recent.snapshot()
    [event] = kept(tmp_path)
    assert {k: v for k, v in event.items() if k != "event_id"} == {
        "event_type": "Data/SET_TABLE",
        "url": "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse",
        "console_mode": "server",
        "server_uuid": SERVER_UUID,
        "cli_uuid": None,
        "server_version": None,
        "timestamp": "2026-12-02T10:00:00.123Z",
        "data": None,
    }
    assert recent["event_id"] == event["event_id"]


async def test_a_dropped_action_is_counted_in_the_ack_and_in_the_metrics(tmp_path: Path) -> None:
    async with runtime_for(tmp_path).running() as runtime:
        ack = await runtime.ingest(EVENTS, batch(("Data/SET_TABLE", "/"), ("App/ONGOING_REQUEST", "/")))
        assert ack == Ack(accepted=1, dropped=1)
        assert counter(runtime, "console_proxy_events_received_total", source="console") == 2.0
        assert counter(runtime, "console_proxy_events_accepted_total", source="console") == 1.0


@pytest.mark.parametrize(
    ("body", "status", "label"),
    [
        (b"{", 400, "invalid_json"),
        (b'{"events": 3}', 400, "bad_shape"),
        (b" " * (MAX_BODY_BYTES + 1), 413, "body_too_large"),
    ],
)
async def test_a_bad_body_raises_its_batch_error_counted_once(
    tmp_path: Path, body: bytes, status: int, label: str
) -> None:
    async with runtime_for(tmp_path).running() as runtime:
        with pytest.raises(BatchError) as refused:
            await runtime.ingest(EVENTS, body)
        assert (refused.value.status, refused.value.label) == (status, label)
        assert counter(runtime, "console_proxy_batches_rejected_total", reason=label, source="console") == 1.0
    assert kept(tmp_path) == []


async def test_a_websocket_message_over_the_batch_limit_is_refused_by_its_size(tmp_path: Path) -> None:
    async with runtime_for(tmp_path).running() as runtime:
        with pytest.raises(BatchError) as refused:
            await runtime.ingest(WEBSOCKET_SOURCE, b" " * (WEBSOCKET_SOURCE.max_body_bytes + 1))
    assert refused.value.status == 413


async def test_a_client_over_its_budget_gets_429_and_nothing_is_kept(tmp_path: Path) -> None:
    async with runtime_for(tmp_path, client_burst=2, client_rate=0.001).running() as runtime:
        await runtime.ingest(EVENTS, batch(("Data/SET_TABLE", "/"), ("Data/SET_TABLE", "/")), client="10.0.0.1")
        with pytest.raises(SinkRefused) as refused:
            await runtime.ingest(EVENTS, batch(("Data/SET_TABLE", "/")), client="10.0.0.1")
        # Another client, and a caller that names none (an embedder's own calls), are not charged to it.
        await runtime.ingest(EVENTS, batch(("Data/SET_TABLE", "/")), client="10.0.0.2")
        await runtime.ingest(EVENTS, batch(("Data/SET_TABLE", "/")))
    assert (refused.value.status, refused.value.label) == (429, "client_over_budget")
    assert refused.value.retry_after >= 1
    assert len(kept(tmp_path)) == 4


class RefusingSink:
    async def start(self) -> None:
        pass

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None:
        raise SinkRefused("spool is full", label="spool_full", retry_after=5)

    def ready(self) -> bool:
        return False

    async def aclose(self, *, drain: bool = True) -> None:
        pass


async def test_a_sink_refusal_reaches_the_caller_counted_and_unready(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", server_uuid=SERVER_UUID)
    async with TelemetryRuntime(settings, env={}, sink=RefusingSink()).running() as runtime:
        assert runtime.ready() is False
        with pytest.raises(SinkRefused) as refused:
            await runtime.ingest(EVENTS, batch(("Data/SET_TABLE", "/")))
        assert counter(runtime, "console_proxy_batches_rejected_total", reason="spool_full", source="console") == 1.0
        assert runtime.recent.snapshot() == []
    assert refused.value.retry_after == 5


async def test_off_starts_no_sink_and_the_embedder_calls_keep_nothing(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path, enable_telemetry=False)
    async with runtime.running():
        assert (runtime.started, runtime.enabled, runtime.upload, runtime.ready()) == (True, False, False, True)
        assert runtime.sink is None
        assert await runtime.record_cli_command("hasura version", is_error=False) is None
        assert await runtime.record_server_metrics({"topic": "server_metrics_v2", "data": {}}) is None
    assert not (tmp_path / "state").exists()


async def test_the_embedder_calls_keep_server_and_cli_events(tmp_path: Path) -> None:
    async with runtime_for(tmp_path).running() as runtime:
        assert await runtime.record_cli_command("hasura migrate apply --endpoint", is_error=True) == Ack(1, 0)
        message = {"topic": "server_metrics_v2", "data": {"metrics": {"tables": 12}}}
        assert await runtime.record_server_metrics(message) == Ack(1, 0)
        with pytest.raises(BatchError):
            await runtime.record_server_metrics({"topic": "server_metrics_v2", "data": {"n": float("nan")}})
    events = kept(tmp_path)
    assert [e.get("command") for e in events] == ["hasura migrate apply", None]
    assert events[0]["flags"] == ["endpoint"] and events[0]["is_error"] is True
    assert events[1]["metrics"] == {"tables": 12}


async def test_start_and_stop_are_idempotent_and_a_stopped_runtime_is_not_ready(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path)
    assert (runtime.started, runtime.ready()) == (False, False)
    await runtime.start()
    await runtime.start()
    assert (runtime.started, runtime.enabled, runtime.ready()) == (True, True, True)
    await runtime.stop()
    await runtime.stop()
    assert (runtime.started, runtime.enabled, runtime.ready()) == (False, False, False)


async def test_an_opt_out_written_while_running_stops_the_embedder_calls_and_an_opt_in_restarts_them(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"enable_telemetry": false}')
    settings = Settings(mode="cli", cli_config=config, state_dir=tmp_path / "state", server_uuid=SERVER_UUID)
    runtime = TelemetryRuntime(settings, env={}, clock=lambda: NOW, home=tmp_path)
    async with runtime.running():
        assert runtime.decision_reloader is not None
        assert await runtime.record_cli_command("hasura version", is_error=False) is None
        assert not (tmp_path / "state").exists()  # off from the start: not even the state directory
        config.write_text('{"enable_telemetry": true, "uuid": "22222222-2222-4333-8444-555555555555"}')
        await runtime.decision_reloader.redecide("test")
        assert runtime.enabled and await runtime.record_cli_command("hasura version", is_error=False) == Ack(1, 0)
        assert await runtime.ingest(EVENTS, batch(("Data/SET_TABLE", "/")), client="10.0.0.1") == Ack(1, 0)
        config.write_text('{"enable_telemetry": false}')
        await runtime.decision_reloader.redecide("test")
        assert runtime.sink is None and (runtime.enabled, runtime.upload, runtime.ready()) == (False, False, True)
        assert await runtime.record_cli_command("hasura version", is_error=False) is None
        assert await runtime.ingest(EVENTS, batch(("Data/SET_TABLE", "/")), client="10.0.0.1") is None
    assert [event["cli_uuid"] for event in kept(tmp_path)] == ["22222222-2222-4333-8444-555555555555"] * 2


async def test_the_opt_out_is_only_watched_where_the_cli_config_can_decide(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    for settings, env in [
        (Settings(mode="server", cli_config=config), {}),
        (Settings(mode="cli", cli_config=config, enable_telemetry=True), {}),
        (Settings(mode="cli", cli_config=config), {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "false"}),
    ]:
        runtime = TelemetryRuntime(dataclasses.replace(settings, state_dir=tmp_path / "state"), env=env)
        async with runtime.running():
            assert runtime.decision_reloader is None


async def test_empty_and_invalid_batches_are_charged_to_the_client(tmp_path: Path) -> None:
    async with runtime_for(tmp_path, client_burst=3, client_rate=0.001).running() as runtime:
        assert await runtime.ingest(EVENTS, b"[]", client="a") == Ack(0, 0)
        for _ in range(2):
            with pytest.raises(BatchError):
                await runtime.ingest(EVENTS, b"{", client="a")
        with pytest.raises(SinkRefused) as refused:
            await runtime.ingest(EVENTS, b"{", client="a")
    assert refused.value.status == 429
