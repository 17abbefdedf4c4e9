"""Hasura's own collector paths, `POST /v1/http` and `GET /v1/ws`, in every mode: a real `console-proxy serve` (over
TLS with a test CA, named telemetry.hasura.io as the Hasura server and CLI name it), and the middleware in an app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from websockets.sync.client import connect

from console_proxy.asgi.middleware import TelemetryMiddleware
from console_proxy.core.settings import Settings

from support import hasura_bodies
from support.console_messages import ERAS, text
from support.servers import serving, uvicorn_server
from support.tls import make_certificates

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
TELEMETRY_HOST = "telemetry.hasura.io"
# (body, content type as its sender posts it, answer)
BODIES: list[tuple[dict[str, Any], str | None, dict[str, int]]] = [
    (hasura_bodies.V1_ALPHA, None, {"accepted": 1, "dropped": 0}),
    (hasura_bodies.V1_3, "application/octet-stream", {"accepted": 1, "dropped": 0}),
    (hasura_bodies.V2_0, "application/octet-stream", {"accepted": 1, "dropped": 0}),
    (hasura_bodies.V2_NEWEST, "application/octet-stream", {"accepted": 1, "dropped": 0}),
    (
        {"server_metrics": {"cpu_usage": 0.5, "memory_usage": 1024}},
        "application/octet-stream",
        {"accepted": 0, "dropped": 1},
    ),
    (hasura_bodies.NESTED, "application/json", {"accepted": 1, "dropped": 0}),
    (hasura_bodies.FLAT_PATH, "application/json", {"accepted": 1, "dropped": 0}),
    (hasura_bodies.FLAT_FLAGS, None, {"accepted": 1, "dropped": 0}),
]
# Free text the bodies carry: none of it may be kept.
# The v1 body's ci, TRAVIS, is kept: a name of the server's fixed CI list, as the FAQ says.
CANARIES = [hasura_bodies.SERVER_BODY_UUID, hasura_bodies.CLI_BODY_UUID, "alice", "CANARY_QUERY", "invoice"]


def kept(state: Path) -> list[tuple[str, dict[str, Any]]]:
    lines = (state / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [(batch["topic"], event) for batch in map(json.loads, lines) for event in batch["data"]]


def post_all(client: httpx.Client, url: str, **extensions: Any) -> list[tuple[int, Any]]:
    answers = []
    for body, content_type, _ in BODIES:
        headers = {"content-type": content_type} if content_type else {}
        answer = client.post(url, content=json.dumps(body).encode(), headers=headers, extensions=extensions)
        answers.append((answer.status_code, answer.json()))
    return answers


def test_the_server_and_cli_bodies_reach_the_gate_over_tls_as_telemetry_hasura_io(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs", TELEMETRY_HOST)
    state = tmp_path / "state"
    args = ["--state-dir", str(state), "--server-uuid", SERVER_UUID]
    args += ["--ssl-certfile", str(certs.cert), "--ssl-keyfile", str(certs.key)]
    context = certs.client_context()
    ready = certs.client_context()
    ready.check_hostname = False  # the readiness poll goes to 127.0.0.1, which the certificate does not name
    with serving(tmp_path, *args, scheme="https", verify=ready) as gate:
        port = gate.base.rsplit(":", 1)[1]
        # As the Hasura server reaches https://telemetry.hasura.io/v1/http through a host alias: that name, checked
        # against the certificate, on the gate's address.
        with httpx.Client(verify=context, headers={"host": TELEMETRY_HOST}) as client:
            answers = post_all(client, f"https://127.0.0.1:{port}/v1/http", sni_hostname=TELEMETRY_HOST)
        with httpx.Client(verify=certs.client_context()) as strict, pytest.raises(httpx.ConnectError):
            strict.post(f"https://127.0.0.1:{port}/v1/http", content=b"{}")  # the name is checked: 127.0.0.1 is not it
    assert answers == [(202, expected) for _, _, expected in BODIES]
    events = kept(state)
    topics = [topic for topic, _ in events]
    servers = ["server_metrics_v2", "server_metrics_v2_test", "server_metrics_v2", "server_metrics_v2"]
    assert topics == [*servers, "cli_test", "cli", "cli"]
    assert [event["command"] for topic, event in events if topic.startswith("cli")] == [
        "hasura migrate apply",
        "hasura console",
        "hasura migrate apply",
    ]
    assert events[-1][1]["flags"] == ["admin-secret", "database-name", "endpoint"]
    assert all(event["server_uuid"] == SERVER_UUID for _, event in events)
    dumped = json.dumps(events)
    assert [canary for canary in CANARIES if canary in dumped] == []


def test_the_consoles_socket_at_v1_ws_is_the_gates(tmp_path: Path) -> None:
    messages = [message for message, expected, _ in ERAS if expected is not None][:3]
    state = tmp_path / "state"
    with (
        serving(tmp_path, "--state-dir", str(state), "--server-uuid", SERVER_UUID) as gate,
        connect(gate.base.replace("http", "ws") + "/v1/ws") as socket,
    ):
        for message in messages:
            socket.send(text(message))
            assert json.loads(socket.recv(timeout=10)) == {"accepted": 1, "dropped": 0}
    assert len(kept(state)) == 3


def test_the_middleware_answers_hasuras_paths_beside_the_app(tmp_path: Path) -> None:
    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("the app")

    state = tmp_path / "state"
    settings = Settings(state_dir=state, server_uuid=SERVER_UUID)
    app = TelemetryMiddleware(Starlette(routes=[Route("/", home)]), settings=settings)
    with uvicorn_server(app) as base:
        with httpx.Client() as client:
            answers = post_all(client, base + "/v1/http")
            unknown = client.post(base + "/v1/http", content=b'{"topic": "console"}')
            assert client.get(base + "/").text == "the app"
        with connect(base.replace("http", "ws") + "/v1/ws") as socket:
            socket.send(text(ERAS[1][0]))
            assert json.loads(socket.recv(timeout=10)) == {"accepted": 1, "dropped": 0}
    assert answers == [(202, expected) for _, _, expected in BODIES]
    assert (unknown.status_code, unknown.json()) == (400, {"error": "unknown topic"})
    assert len(kept(state)) == 8
