"""`serve --learn-unknown`: the raw unknown routes and names go to a local 0600 file, bounded, and nowhere else.

A real collector records everything the gate sends upstream; the spool file, /recent and the collector's
requests are searched for the raw values.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from console_proxy.asgi.app import create_app
from console_proxy.cli.main import main
from console_proxy.core.settings import Settings
from console_proxy.delivery.unknowns import FILE_NAME, UnknownsFile, read_unknowns

from support.collector import Collector, read_metrics
from support.servers import uvicorn_server

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
EVENTS = "/_telemetry/v1/events"
SECRET = "zq7canary"
RAW_ROUTES = [f"/console/reports/{SECRET}{n}/view" for n in range(6)]
RAW_NAMES = [f"Reports/OPEN_{SECRET.upper()}", f"{SECRET}@corp.example"]


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


def _settings(tmp_path: Path, collector: Collector, learn: bool) -> Settings:
    return Settings(
        upstream=collector.url,
        state_dir=tmp_path / "state",
        server_uuid=SERVER_UUID,
        batch_max_events=20,
        batch_max_delay_s=0.05,
        retry_base_s=0.01,
        retry_cap_s=0.1,
        shutdown_grace_s=1.0,
        learn_unknown=learn,
    )


def _events() -> list[dict[str, str]]:
    events = [{"type": "Data/SET_TABLE", "route": route} for route in RAW_ROUTES]
    events += [{"type": name, "route": "/console/settings/about"} for name in RAW_NAMES]
    return events


def test_unknowns_are_kept_locally_and_never_seen_upstream(tmp_path: Path, collector: Collector) -> None:
    events = _events()
    with uvicorn_server(create_app(_settings(tmp_path, collector, True), env={})) as base:
        response = httpx.post(base + EVENTS, json={"events": events})
        assert (response.status_code, response.json()) == (202, {"accepted": len(events), "dropped": 0})
        delivered = collector.wait_for_events(len(events))
        recent = httpx.get(base + "/_telemetry/v1/recent").text
        values = read_metrics(httpx.get(base + "/metrics").text)
    path = tmp_path / "state" / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    routes, names = read_unknowns(path)
    assert (sorted(routes), sorted(names)) == (sorted(RAW_ROUTES), sorted(RAW_NAMES))
    assert sorted(e["event_type"] for e in delivered) == ["Data/SET_TABLE"] * 6 + ["UNKNOWN"] * 2
    assert {e["url"] for e in delivered} == {"/UNKNOWN", "/settings/about"}
    upstream = "".join(json.dumps(request.body) for request in collector.requests).encode()
    spool = b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir() if p.name != FILE_NAME and p.is_file())
    for where in (upstream, spool, recent.encode()):
        assert SECRET.encode() not in where and SECRET.upper().encode() not in where
    assert values["console_proxy_actions_unknown_total{source=console}"] == 2
    assert values["console_proxy_unknowns_learned_total{kind=route}"] == 6
    assert values["console_proxy_unknowns_learned_total{kind=action}"] == 2

    # The operator's own suggestions, from that file.
    result = CliRunner().invoke(main, ["rules", "suggest", "--file", str(path)])
    assert result.exit_code == 0, result.output
    assert "  - /reports/{REPORT}/view" in result.stdout and SECRET not in result.stdout.split("allow:")[0]


def test_without_the_flag_no_file_is_written(tmp_path: Path, collector: Collector) -> None:
    with uvicorn_server(create_app(_settings(tmp_path, collector, False), env={})) as base:
        assert httpx.post(base + EVENTS, json={"events": _events()}).status_code == 202
        collector.wait_for_events(len(_events()))
    assert not (tmp_path / "state" / FILE_NAME).exists()


def test_the_file_is_bounded_and_narrowed_to_0600(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    path.write_text(json.dumps({"route": "/kept/before"}) + "\n", encoding="utf-8")
    path.chmod(0o644)
    unknowns = UnknownsFile(path, max_bytes=400)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = unknowns.keep("route", [f"/r/{n:04d}" for n in range(100)])
    assert 0 < written < 100
    assert path.stat().st_size <= 400
    # Once full, nothing more; a value seen before is never written twice.
    assert unknowns.keep("route", ["/r/more"]) == 0
    assert unknowns.keep("route", ["/kept/before"]) == 0
    routes, _ = read_unknowns(path)
    assert routes[0] == "/kept/before" and len(routes) == written + 1
