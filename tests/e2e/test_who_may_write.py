"""Who may write and how much: Origin and Sec-Fetch-Site, standard JSON only, each client's budget of events."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import websockets.exceptions
import websockets.sync.client
from websockets.typing import Origin

from console_proxy.asgi.app import create_app
from console_proxy.core.settings import Settings

from support.collector import read_metrics
from support.servers import uvicorn_server

EVENTS = "/_telemetry/v1/events"
WS = "/_telemetry/v1/ws"
ONE = [{"type": "Data/SET_TABLE", "route": "/console/data"}]


def settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(state_dir=tmp_path / "state", server_uuid="11111111-2222-4333-8444-555555555555", **overrides)  # type: ignore[arg-type]


def kept(tmp_path: Path) -> int:
    path = tmp_path / "state" / "events.jsonl"
    return sum(len(json.loads(line)["data"]) for line in path.read_text().splitlines()) if path.exists() else 0


def rejected(base: str, reason: str) -> float:
    return read_metrics(httpx.get(base + "/metrics").text).get(
        f"console_proxy_batches_rejected_total{{reason={reason},source=console}}", 0.0
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 202),
        ({"origin": "{base}", "sec-fetch-site": "same-origin"}, 202),
        ({"origin": "https://console.example.com", "sec-fetch-site": "cross-site"}, 202),  # --allowed-origin
        ({"origin": "http://evil.example"}, 403),
        ({"origin": "http://127.0.0.1:1"}, 403),  # same host, another port: another origin
        ({"origin": "null"}, 403),
        ({"sec-fetch-site": "cross-site"}, 403),
        ({"origin": "{base}", "sec-fetch-site": "cross-site"}, 403),
    ],
)
def test_events_only_from_the_consoles_origin_or_an_allowed_one(
    tmp_path: Path, headers: dict[str, str], status: int
) -> None:
    app = create_app(settings(tmp_path, allowed_origin=("https://console.example.com",)), env={})
    with uvicorn_server(app) as base:
        sent = {k: v.format(base=base) for k, v in headers.items()}
        response = httpx.post(base + EVENTS, json=ONE, headers=sent)
        assert response.status_code == status
        if status == 403:
            assert response.json() == {"error": "origin not allowed"}
            assert rejected(base, "foreign_origin") == 1.0
    assert kept(tmp_path) == (1 if status == 202 else 0)


def test_a_foreign_cors_preflight_is_refused_and_counted(tmp_path: Path) -> None:
    with uvicorn_server(create_app(settings(tmp_path), env={})) as base:
        preflight = httpx.options(
            base + EVENTS,
            headers={"origin": "http://evil.example", "access-control-request-method": "POST"},
        )
        assert preflight.status_code == 403
        assert not any(name.startswith("access-control-") for name in preflight.headers)
        assert rejected(base, "foreign_origin") == 1.0


def test_a_websocket_from_a_foreign_origin_is_refused_at_the_handshake(tmp_path: Path) -> None:
    with uvicorn_server(create_app(settings(tmp_path), env={})) as base:
        url = base.replace("http://", "ws://") + WS
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            websockets.sync.client.connect(url, origin=Origin("http://evil.example"))
        assert refused.value.response.status_code == 403
        with websockets.sync.client.connect(url, origin=Origin(base)) as ws:
            ws.send(json.dumps(ONE))
            assert ws.recv(timeout=10) == '{"accepted":1,"dropped":0}'
        assert rejected(base, "foreign_origin") == 1.0


@pytest.mark.parametrize(
    "body",
    [
        b'[{"type": "A/B", "route": "/", "n": NaN}]',
        b'[{"type": "A/B", "route": "/", "n": Infinity}]',
        b'[{"type": "A/B", "route": "/", "n": -Infinity}]',
        b'[{"type": "A/B", "route": "/", "type": "C/D"}]',
        b'{"events": [], "events": [{"type": "A/B", "route": "/"}]}',
    ],
)
def test_only_standard_json_is_accepted(tmp_path: Path, body: bytes) -> None:
    with uvicorn_server(create_app(settings(tmp_path), env={})) as base:
        response = httpx.post(base + EVENTS, content=body, headers={"content-type": "application/json"})
        assert (response.status_code, response.json()) == (400, {"error": "invalid JSON"})
        url = base.replace("http://", "ws://") + WS
        # Over the WebSocket the message is answered, dropped and counted; the socket stays open.
        with websockets.sync.client.connect(url) as ws:
            ws.send(body.decode())
            assert json.loads(ws.recv(timeout=10)) == {"error": "invalid JSON"}
            ws.send(body.decode())
            assert json.loads(ws.recv(timeout=10)) == {"error": "invalid JSON"}
    assert kept(tmp_path) == 0


def test_a_client_over_its_budget_gets_429_and_others_keep_theirs(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, client_burst=50, client_rate=10.0), env={})
    twenty = ONE * 20
    with uvicorn_server(app) as base:
        codes = [httpx.post(base + EVENTS, json=twenty).status_code for _ in range(3)]
        refused = httpx.post(base + EVENTS, json=twenty)
        # The same address with the console's own origin is another client, with a budget of its own.
        console = httpx.post(base + EVENTS, json=twenty, headers={"origin": base})
        assert rejected(base, "client_over_budget") == 2.0
        url = base.replace("http://", "ws://") + WS
        with websockets.sync.client.connect(url) as ws:
            ws.send(json.dumps(twenty))
            over_budget = json.loads(ws.recv(timeout=10))
    assert codes == [202, 202, 429]
    assert (refused.status_code, refused.json(), refused.headers["retry-after"]) == (
        429,
        {"error": "too many events from this client"},
        "2",
    )
    assert console.status_code == 202
    assert over_budget == {"error": "too many events from this client"}
    assert kept(tmp_path) == 60
