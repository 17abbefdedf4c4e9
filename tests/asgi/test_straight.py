"""The straight path of `POST /_telemetry/v1/events` (asgi/straight.py) answers as the whole app does.

A corpus of good and bad requests goes, in the same order, to two real servers of the same settings: one as
`create_app` builds it, one with the straight path turned off. Every answer (status, headers, body) and every
request, refusal and event counter of /metrics must be the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from console_proxy.asgi.app import create_app
from console_proxy.asgi.straight import StraightApp, straight_hosts
from console_proxy.core.settings import Settings

from support.servers import uvicorn_server

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
EVENTS = "/_telemetry/v1/events"
GOOD = json.dumps({"events": [{"type": "A/B", "route": "/console/data/db/schema/public/tables/t/browse"}]})


def _corpus(port: int) -> list[tuple[str, dict[str, str], bytes]]:
    here = f"127.0.0.1:{port}"
    json_type = {"content-type": "application/json"}
    big = json.dumps({"events": [{"type": "A", "route": "/" + "x" * 1000}] * 100}).encode()
    return [
        ("POST", {"host": here, **json_type}, GOOD.encode()),
        ("POST", {"host": f"localhost:{port}", **json_type}, GOOD.encode()),
        ("POST", {"host": "localhost", **json_type}, GOOD.encode()),
        ("POST", {"host": "LOCALHOST", **json_type}, GOOD.encode()),
        ("POST", {"host": f"[::1]:{port}", **json_type}, GOOD.encode()),
        ("POST", {"host": "evil.example", **json_type}, GOOD.encode()),
        ("POST", {"host": "localhost:notaport", **json_type}, GOOD.encode()),
        ("POST", {"host": "localhost.", **json_type}, GOOD.encode()),
        ("POST", {"host": here, "origin": "http://evil.example", **json_type}, GOOD.encode()),
        ("POST", {"host": here, "origin": f"http://localhost:{port}", **json_type}, GOOD.encode()),
        ("POST", {"host": here, "content-type": "text/plain"}, GOOD.encode()),
        ("POST", {"host": here, "content-type": "text/html"}, GOOD.encode()),
        ("POST", {"host": here}, GOOD.encode()),
        ("POST", {"host": here, **json_type}, b""),
        ("POST", {"host": here, **json_type}, b"{"),
        ("POST", {"host": here, **json_type}, b'{"events":[],"events":[]}'),
        ("POST", {"host": here, **json_type}, b'{"events":[{"type":"A","route":"/","x":NaN}]}'),
        ("POST", {"host": here, **json_type}, b'{"events":[{"type":"A","route":"/\\u0000"}]}'),
        ("POST", {"host": here, **json_type}, b'{"events":[{"type":"A","route":"/\x7f"}]}'),
        ("POST", {"host": here, **json_type}, b'{"events":[{"type":"A<b>","route":"/"},7]}'),
        ("POST", {"host": here, **json_type}, b"\xff\xfe"),
        ("POST", {"host": here, **json_type}, big),
        ("POST", {"host": here, **json_type}, b"x" * (2 << 20)),
        ("POST", {"host": here, **json_type}, b'[{"type":"A","route":"/console"}]'),
        ("GET", {"host": here}, b""),
        ("PUT", {"host": here, **json_type}, GOOD.encode()),
        ("POST", {"host": here, **json_type}, GOOD.encode()),
    ]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[str, str]]:
    def settings(name: str) -> Settings:
        # A small budget, refilled too slowly to differ between the two runs.
        return Settings(state_dir=tmp_path / name, server_uuid=SERVER_UUID, client_rate=1e-6, client_burst=150)

    straight = create_app(settings("straight"), env={})
    general = create_app(settings("general"), env={})
    assert isinstance(general, StraightApp) and general.straight is not None
    assert isinstance(straight, StraightApp) and b"127.0.0.1" in straight.straight_hosts
    general.straight = None
    with uvicorn_server(straight) as a, uvicorn_server(general) as b:
        yield a, b


def _counters(client: httpx.Client, base: str) -> list[str]:
    text = client.get(f"{base}/metrics").text
    kept = ("requests", "rejected", "dropped", "received", "accepted")
    return sorted(
        line
        for line in text.splitlines()
        if not line.startswith("#")
        and any(k in line for k in kept)
        and "_created" not in line
        and "seconds" not in line
    )


def test_the_straight_path_answers_as_the_whole_app(servers: tuple[str, str]) -> None:
    straight, general = servers
    answers: dict[str, list[tuple[int, list[tuple[str, str]], bytes]]] = {straight: [], general: []}
    with httpx.Client(timeout=10) as client:
        for base in servers:
            port = httpx.URL(base).port
            assert port is not None
            for method, headers, body in _corpus(port) * 3:
                # The Host as given above: each server is asked for its own port.
                answer = client.request(method, f"{base}{EVENTS}", headers=headers, content=body)
                kept = [(k, v) for k, v in answer.headers.items() if k not in ("date", "server")]
                answers[base].append((answer.status_code, kept, answer.content))
        statuses = {status for status, _, _ in answers[straight]}
        assert {202, 400, 403, 405, 413, 415} <= statuses
        assert answers[straight] == answers[general]
        assert _counters(client, straight) == _counters(client, general)


def test_only_plain_trusted_names_take_the_straight_path() -> None:
    assert straight_hosts(["127.0.0.1", "localhost", "[::1]", "*.example"], proxies_trusted=False) == {
        b"127.0.0.1",
        b"localhost",
    }
    assert straight_hosts(["localhost"], proxies_trusted=True) == frozenset()
    assert straight_hosts(["localhost", "*"], proxies_trusted=False) == frozenset()
