from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import socket
import tracemalloc
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.exceptions
import websockets.sync.client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Message, Scope

from console_proxy.asgi.middleware import TelemetryMiddleware
from console_proxy.asgi.runtime import TelemetryRuntime
from console_proxy.core.settings import Settings
from console_proxy.delivery.sink import OutboundEvent, SinkRefused
from console_proxy.rules.route_rules import RulesHolder
from console_proxy.sources.base import MAX_BODY_BYTES

from support.servers import uvicorn_server

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
CLIENT_UUID = "99999999-8888-4777-a666-555555555555"
EVENTS = "/_telemetry/v1/events"
CANARY = "canary-7f3a"


class Inner:
    """A wrapped app that records what reaches it: HTTP echoes, a WebSocket echo, lifespan messages."""

    def __init__(self) -> None:
        self.lifespan: list[str] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.lifespan.append(message["type"])
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        elif scope["type"] == "http":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            answer = json.dumps({"path": scope["path"], "method": scope["method"], "body": body.decode()}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"x-inner", b"1")]})
            await send({"type": "http.response.body", "body": answer})
        else:
            await receive()
            await send({"type": "websocket.accept"})
            message = await receive()
            await send({"type": "websocket.send", "text": "inner:" + message["text"]})
            await send({"type": "websocket.close", "code": 1000})


def settings_for(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(state_dir=tmp_path / "state", server_uuid=SERVER_UUID, **extra)


def local_events(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "state" / "events.jsonl"
    if not path.exists():
        return []
    return [event for line in path.read_text().splitlines() for event in json.loads(line)["data"]]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A server of its own, for tests that read the whole local file."""
    with uvicorn_server(TelemetryMiddleware(Inner(), runtime=TelemetryRuntime(settings_for(tmp_path), env={}))) as base:
        yield base


@dataclasses.dataclass
class Shared:
    base: str
    events_file: Path

    def lines(self) -> int:
        return len(self.events_file.read_text().splitlines()) if self.events_file.exists() else 0


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """One server for the tests that only look at answers and at whether a line was written (faster suite)."""
    tmp_path = tmp_path_factory.mktemp("shared")
    with uvicorn_server(TelemetryMiddleware(Inner(), runtime=TelemetryRuntime(settings_for(tmp_path), env={}))) as base:
        yield Shared(base, tmp_path / "state" / "events.jsonl")


def test_end_to_end_the_file_holds_anonymized_events_with_the_server_uuid(served: str, tmp_path: Path) -> None:
    batch = {
        "events": [
            {
                "type": "Data/SET_TABLE",
                "route": f"/console/data/{CANARY}db/schema/{CANARY}s/tables/{CANARY}t/browse"
                f"?filter=email%3B%24eq%3B{CANARY}",
                "payload": {"row": CANARY},
                "server_uuid": CLIENT_UUID,
                "cli_uuid": CLIENT_UUID,
                "meta": CANARY,
            },
            {"type": "App/ONGOING_REQUEST", "route": "/console/settings/about"},
            {"type": f"{CANARY}\n", "route": "/console"},
        ],
        "console_mode": "cli",
        "server_uuid": CLIENT_UUID,
        "server_version": "v2.40.0",
    }
    response = httpx.post(served + EVENTS, json=batch)
    # The name carrying the canary is not dropped: it leaves as the unknown token.
    assert (response.status_code, response.json()) == (202, {"accepted": 2, "dropped": 1})
    hasura = {
        "topic": "console",
        "data": {
            "event_type": "Actions/X",
            "url": f"/console/actions/manage/{CANARY}/modify",
            "cli_uuid": CLIENT_UUID,
            "data": {"error": CANARY},
        },
    }
    response = httpx.post(served + EVENTS, content=json.dumps(hasura), headers={"content-type": "text/plain"})
    assert (response.status_code, response.json()) == (202, {"accepted": 1, "dropped": 0})

    raw = (tmp_path / "state" / "events.jsonl").read_text()
    assert CANARY not in raw and CLIENT_UUID not in raw and "email" not in raw
    events = local_events(tmp_path)
    assert [
        (e["event_type"], e["url"], e["console_mode"], e["server_uuid"], e["cli_uuid"], e["server_version"], e["data"])
        for e in events
    ] == [
        (
            "Data/SET_TABLE",
            "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse",
            "server",
            SERVER_UUID,
            None,
            "v2.40.0",
            None,
        ),
        ("UNKNOWN", "/", "server", SERVER_UUID, None, "v2.40.0", None),
        ("UNKNOWN", "/actions/manage/ACTION/modify", "server", SERVER_UUID, None, None, None),
    ]
    # /recent shows what leaves, each event with the topic it is kept under.
    recent = httpx.get(served + "/_telemetry/v1/recent").json()
    assert recent == [{"topic": "console", **event} for event in events]


def test_status(shared: Shared) -> None:
    response = httpx.get(shared.base + "/_telemetry/v1/status")
    assert (response.status_code, response.json()) == (
        200,
        {
            "enabled": True,
            "mode": "server",
            "upload": False,
            "test_events": "kept",
            "decided_by": "default (nothing set)",
            "identity": {
                "server_uuid": "11111111-2222-4333-8444-555555555555",
                "cli_uuid": None,
                "server_version": None,
                "server_uuid_from": "--server-uuid",
                "cli_uuid_from": None,
                "hasura_endpoint": None,
            },
            "delivery": {"upstream": None, "queue": None},
        },
    )


def _chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * 4096
        sent += 4096


TOO_MANY = json.dumps({"events": [{"type": "A/B", "route": "/console"}] * 101}).encode()
BAD_INPUT = [
    # (label, body, content type, status, body)
    ("invalid JSON", b'{"events": [', "application/json", 400, {"error": "invalid JSON"}),
    ("invalid UTF-8", b'{"events": ["\xff\xfe"]}', "application/json", 400, {"error": "invalid UTF-8"}),
    ("over the limit", b" " * (MAX_BODY_BYTES + 1), "application/json", 413, {"error": "body too large"}),
    ("101 events", TOO_MANY, "application/json", 413, {"error": "too many events"}),
    ("events not a list", b'{"events": {"type": "A/B"}}', "application/json", 400, {"error": "invalid batch shape"}),
    ("a number", b"42", "application/json", 400, {"error": "invalid batch shape"}),
    ("a string", b'"events"', "text/plain", 400, {"error": "invalid batch shape"}),
    ("deep nesting", b"[" * 30_000 + b"]" * 30_000, "application/json", 400, {"error": "nesting too deep"}),
    ("unknown media type", b"<x/>", "application/xml", 415, {"error": "unsupported media type"}),
    ("no media type", b"[]", None, 415, {"error": "unsupported media type"}),
    ("form media type", b"a=b", "application/x-www-form-urlencoded", 415, {"error": "unsupported media type"}),
    ("empty body", b"", "application/json", 400, {"error": "empty body"}),
]
DROPPED_INPUT = [
    # (label, body, accepted, dropped): single bad events are dropped, the batch is accepted
    (
        "wrong types",
        {"events": [{"type": 1, "route": "/console"}, {"type": "A/B", "route": ["x"]}, None, [], "s"]},
        0,
        5,
    ),
    (
        "huge strings",
        {"events": [{"type": "A/B", "route": "/" + "x" * 60_000}, {"type": "y" * 200, "route": "/"}]},
        1,  # a huge name is not dropped: it leaves as the unknown token
        1,
    ),
    ("mixed", [{"type": "A/B", "route": "/console/settings"}, {"type": "A/B"}], 1, 1),
]


@pytest.mark.parametrize(
    ("label", "body", "content_type", "status", "expected"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_gets_its_exact_status_and_fixed_body_and_the_server_keeps_serving(
    shared: Shared, label: str, body: bytes, content_type: str | None, status: int, expected: Any
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    before = shared.lines()
    response = httpx.post(shared.base + EVENTS, content=body, headers=headers)
    assert (response.status_code, response.json()) == (status, expected)
    assert shared.lines() == before
    good = httpx.post(shared.base + EVENTS, json=[{"type": "A/B", "route": "/console/settings"}])
    assert (good.status_code, good.json(), shared.lines()) == (202, {"accepted": 1, "dropped": 0}, before + 1)


@pytest.mark.parametrize(("label", "body", "accepted", "dropped"), DROPPED_INPUT, ids=[c[0] for c in DROPPED_INPUT])
def test_bad_events_are_dropped_and_counted(shared: Shared, label: str, body: Any, accepted: int, dropped: int) -> None:
    response = httpx.post(shared.base + EVENTS, json=body)
    assert (response.status_code, response.json()) == (202, {"accepted": accepted, "dropped": dropped})


def test_a_chunked_body_over_the_limit_is_refused_without_a_content_length(shared: Shared) -> None:
    served = shared.base
    response = httpx.post(
        served + EVENTS, content=_chunks(MAX_BODY_BYTES + 8192), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert (response.status_code, response.json()) == (413, {"error": "body too large"})
    assert httpx.post(served + EVENTS, json=[{"type": "A/B", "route": "/"}]).status_code == 202


def test_a_content_length_over_the_limit_is_refused_before_any_body_is_sent(shared: Shared) -> None:
    host, port = shared.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /_telemetry/v1/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 10000000\r\n\r\n"
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b'\r\n\r\n{"error":"body too large"}')


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", EVENTS, "POST"),
        ("PUT", EVENTS, "POST"),
        ("POST", "/_telemetry/v1/status", "GET"),
        ("DELETE", "/_telemetry/v1/recent", "GET"),
    ],
)
def test_a_wrong_method_is_405_with_allow(shared: Shared, method: str, path: str, allow: str) -> None:
    response = httpx.request(method, shared.base + path)
    assert (response.status_code, response.headers["allow"], response.json()) == (
        405,
        allow,
        {"error": "method not allowed"},
    )


def test_http_websocket_and_lifespan_pass_through_to_the_wrapped_app(tmp_path: Path) -> None:
    inner = Inner()
    with uvicorn_server(TelemetryMiddleware(inner, runtime=TelemetryRuntime(settings_for(tmp_path), env={}))) as base:
        assert inner.lifespan == ["lifespan.startup"]
        response = httpx.post(base + "/_telemetry/v2/events?x=1", content=b"hello")
        assert (response.status_code, response.headers["x-inner"], response.json()) == (
            200,
            "1",
            {"path": "/_telemetry/v2/events", "method": "POST", "body": "hello"},
        )
        with websockets.sync.client.connect(base.replace("http", "ws") + "/elsewhere") as ws:
            ws.send("hi")
            assert ws.recv(timeout=5) == "inner:hi"
        # The runtime started with the wrapped app's lifespan.
        assert httpx.get(base + "/_telemetry/v1/status").status_code == 200
    assert inner.lifespan == ["lifespan.startup", "lifespan.shutdown"]


async def no_lifespan_app(scope: Scope, receive: Any, send: Any) -> None:
    assert scope["type"] == "http", "this app speaks HTTP only"
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_the_runtime_starts_even_when_the_wrapped_app_has_no_lifespan(tmp_path: Path) -> None:
    with uvicorn_server(
        TelemetryMiddleware(no_lifespan_app, runtime=TelemetryRuntime(settings_for(tmp_path), env={}))
    ) as base:
        assert httpx.post(base + EVENTS, json=[{"type": "A/B", "route": "/console"}]).status_code == 202
        assert httpx.get(base + "/other").status_code == 204
    assert [e["url"] for e in local_events(tmp_path)] == ["/"]


def test_a_bad_rules_file_fails_the_lifespan_startup(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nroutes: [\n")
    middleware = TelemetryMiddleware(Inner(), runtime=TelemetryRuntime(settings_for(tmp_path, rules=rules), env={}))
    with pytest.raises(RuntimeError, match="did not start"), uvicorn_server(middleware):
        pass


@pytest.mark.anyio
async def test_before_start_the_endpoints_answer_503_with_retry_after(tmp_path: Path) -> None:
    middleware = TelemetryMiddleware(Inner(), runtime=TelemetryRuntime(settings_for(tmp_path), env={}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://t") as client:
        for response in [await client.post(EVENTS, json=[]), await client.get("/_telemetry/v1/status")]:
            assert (response.status_code, response.headers["retry-after"], response.json()) == (
                503,
                "1",
                {"error": "telemetry is not started"},
            )
    assert not (tmp_path / "state").exists()


def test_disabled_answers_204_and_writes_nothing(tmp_path: Path) -> None:
    middleware = TelemetryMiddleware(
        Inner(), runtime=TelemetryRuntime(settings_for(tmp_path, enable_telemetry=False), env={})
    )
    with uvicorn_server(middleware) as base:
        response = httpx.post(base + EVENTS, json=[{"type": "A/B", "route": "/console"}])
        assert (response.status_code, response.content) == (204, b"")
        xml = httpx.post(base + EVENTS, content=b"<x/>", headers={"content-type": "application/xml"})
        assert xml.status_code == 204
        status = httpx.get(base + "/_telemetry/v1/status").json()
        assert status == {
            "enabled": False,
            "mode": "server",
            "upload": False,
            "test_events": "kept",
            "decided_by": "--enable-telemetry=false",
            "how_to_turn_on": "start console-proxy with --enable-telemetry true (it is now set by --enable-telemetry).",
        }
        with websockets.sync.client.connect(base.replace("http", "ws") + "/_telemetry/v1/ws") as ws:
            ws.send(json.dumps([{"type": "A/B", "route": "/console"}]))
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.3)
        assert httpx.get(base + "/_telemetry/v1/recent").json() == []
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    ("env", "enabled"), [({"DO_NOT_TRACK": "1"}, False), ({"HASURA_GRAPHQL_ENABLE_TELEMETRY": "no"}, False), ({}, True)]
)
def test_the_environment_decides_when_no_flag_does(tmp_path: Path, env: dict[str, str], enabled: bool) -> None:
    with uvicorn_server(
        TelemetryMiddleware(Inner(), runtime=TelemetryRuntime(settings_for(tmp_path), env=env))
    ) as base:
        assert httpx.get(base + "/_telemetry/v1/status").json()["enabled"] is enabled
        assert httpx.post(base + EVENTS, json=[]).status_code == (202 if enabled else 204)


class RefusingSink:
    def __init__(self, refusal: Exception) -> None:
        self.refusal = refusal

    async def start(self) -> None:
        pass

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None:
        raise self.refusal

    def ready(self) -> bool:
        return True

    async def aclose(self, *, drain: bool = True) -> None:
        pass


@pytest.mark.parametrize(
    ("refusal", "status", "retry_after", "body"),
    [
        (SinkRefused("spool full", status=429, retry_after=5), 429, "5", {"error": "spool full"}),
        (SinkRefused("shutting down"), 503, "1", {"error": "shutting down"}),
        (RuntimeError(CANARY), 503, "1", {"error": "temporarily unavailable"}),
    ],
)
def test_a_refusing_sink_gets_its_status_and_retry_after_and_never_a_2xx(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, refusal: Exception, status: int, retry_after: str, body: Any
) -> None:
    middleware = TelemetryMiddleware(
        Inner(), runtime=TelemetryRuntime(settings_for(tmp_path), sink=RefusingSink(refusal), env={})
    )
    with caplog.at_level(logging.DEBUG, "console_proxy"), uvicorn_server(middleware) as base:
        response = httpx.post(base + EVENTS, json=[{"type": "A/B", "route": f"/console/{CANARY}"}])
        assert (response.status_code, response.headers["retry-after"], response.json()) == (status, retry_after, body)
        assert httpx.get(base + "/_telemetry/v1/recent").json() == []
    assert CANARY not in caplog.text


class ExplodingRules:
    unknown = "/UNKNOWN"

    def anonymize(self, url: str) -> str:
        raise ValueError(url)

    def classify_action(self, name: object) -> tuple[str, str | None]:
        return "kept", str(name)


class ExplodingHolder(RulesHolder):
    def __init__(self) -> None:
        self.path = None

    @property
    def rules(self) -> Any:
        return ExplodingRules()


def test_an_unexpected_error_on_a_batch_is_a_fixed_400_and_logs_no_input(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    middleware = TelemetryMiddleware(
        Inner(), runtime=TelemetryRuntime(settings_for(tmp_path), rules_holder=ExplodingHolder(), env={})
    )
    with caplog.at_level(logging.DEBUG, "console_proxy"), uvicorn_server(middleware) as base:
        response = httpx.post(base + EVENTS, json=[{"type": "A/B", "route": f"/console/{CANARY}"}])
        assert (response.status_code, response.json()) == (400, {"error": "invalid batch"})
    assert "unexpected ValueError while answering a batch" in caplog.text
    assert CANARY not in caplog.text


# WebSocket


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/_telemetry/v1/ws"


@pytest.mark.parametrize(
    "message",
    [
        json.dumps({"events": [{"type": "A/B", "route": f"/console/data/{CANARY}"}, {"type": 5, "route": "/"}]}),
        json.dumps([{"type": "A/B", "route": f"/console/data/{CANARY}"}, {"type": 5, "route": "/"}]),
    ],
)
def test_websocket_batches_are_acknowledged(served: str, tmp_path: Path, message: str) -> None:
    with websockets.sync.client.connect(ws_url(served)) as ws:
        ws.send(message)
        assert json.loads(ws.recv(timeout=5)) == {"accepted": 1, "dropped": 1}
        ws.send(message)
        assert json.loads(ws.recv(timeout=5)) == {"accepted": 1, "dropped": 1}
    assert [e["url"] for e in local_events(tmp_path)] == ["/data/SOURCE", "/data/SOURCE"]


def test_websocket_takes_the_hasura_console_message(served: str, tmp_path: Path) -> None:
    message = {
        "topic": "console",
        "data": {
            "server_version": "v2.1.0",
            "event_type": "Data/SET_TABLE",
            "url": f"/console/data/{CANARY}/schema/s",
            "console_mode": "cli",
            "cli_uuid": CLIENT_UUID,
            "server_uuid": CLIENT_UUID,
            "data": CANARY,
        },
    }
    with websockets.sync.client.connect(ws_url(served)) as ws:
        ws.send(json.dumps(message))
        assert json.loads(ws.recv(timeout=5)) == {"accepted": 1, "dropped": 0}
    raw = (tmp_path / "state" / "events.jsonl").read_text()
    assert CANARY not in raw and CLIENT_UUID not in raw
    [event] = local_events(tmp_path)
    assert (event["url"], event["server_uuid"], event["server_version"], event["console_mode"]) == (
        "/data/SOURCE/schema/SCHEMA",
        SERVER_UUID,
        "v2.1.0",
        "server",
    )


@pytest.mark.parametrize(
    ("message", "answer"),
    [
        (b'[{"type": "A/B", "route": "/"}]', "binary message"),
        ("[" + " " * MAX_BODY_BYTES + "]", "body too large"),
        (json.dumps({"events": [{"type": "A/B", "route": "/"}] * 101}), "too many events"),
        ("{not json", "invalid JSON"),
        ('{"events": 3}', "invalid batch shape"),
        ("[" * 50_000, "nesting too deep"),
    ],
)
def test_a_bad_websocket_message_is_answered_and_the_socket_stays_open(
    shared: Shared, message: str | bytes, answer: str
) -> None:
    served = shared.base
    before = shared.lines()
    good = json.dumps({"topic": "console", "data": {"event_type": "A/B", "url": "/console/settings/about"}})
    with websockets.sync.client.connect(ws_url(served), max_size=None) as ws:
        ws.send(message)
        assert json.loads(ws.recv(timeout=5)) == {"error": answer}
        ws.send(good)
        assert json.loads(ws.recv(timeout=5)) == {"accepted": 1, "dropped": 0}
    assert shared.lines() == before + 1


# No input yields a 500: a property over in-process calls, and a few over the socket.

MEDIA_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "text/plain;charset=UTF-8",
        "application/xml",
        "",
        "application/json; charset=latin-1",
        "TEXT/PLAIN",
        "multipart/form-data; boundary=x",
    ]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.sampled_from(["type", "route", "events", "topic", "data", "url", "event_type", "server_version", "x"]),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)
BODIES = st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode()))


@pytest.fixture
async def asgi_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    middleware = TelemetryMiddleware(Inner(), runtime=TelemetryRuntime(settings_for(tmp_path), env={}))
    async with middleware.running():
        transport = httpx.ASGITransport(app=middleware)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


@pytest.mark.anyio
async def test_any_body_and_media_type_is_answered_202_or_a_4xx_never_a_500(asgi_client: httpx.AsyncClient) -> None:
    @hsettings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=BODIES, media_type=MEDIA_TYPES)
    def check(body: bytes, media_type: str | None) -> None:
        headers = {"content-type": media_type} if media_type is not None else {}
        response = asyncio.run_coroutine_threadsafe(
            asgi_client.post(EVENTS, content=body, headers=headers), loop
        ).result()
        assert response.status_code in {202, 400, 413, 415}

    # Which statuses the generated cases reach is up to hypothesis; each one is pinned by a case of its own
    # (test_bad_input_gets_its_exact_status_and_fixed_body_and_the_server_keeps_serving).
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(check)


@pytest.mark.parametrize(
    "body",
    [
        b"\x00" * 100,
        b'{"events": [{"type": "\\ud800", "route": "\\udfff"}]}',
        b'[{"type": "A/B", "route": "/\\u0000"}]',
        b"1e999999",
        b"9" * 5000,
        b'{"topic": "console", "data": []}',
        b'{"topic": "console"}',
    ],
)
def test_odd_bodies_over_the_socket_are_not_a_500(shared: Shared, body: bytes) -> None:
    served = shared.base
    response = httpx.post(served + EVENTS, content=body, headers={"content-type": "application/json"})
    assert response.status_code in {202, 400}
    assert httpx.post(served + EVENTS, json=[{"type": "A/B", "route": "/"}]).status_code == 202


def test_mounted_under_a_sub_path_with_the_runtime_entered_from_the_outer_lifespan(tmp_path: Path) -> None:
    middleware = TelemetryMiddleware(Inner(), runtime=TelemetryRuntime(settings_for(tmp_path), env={}))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with middleware.running():
            yield

    outer = Starlette(routes=[Mount("/admin", app=middleware)], lifespan=lifespan)
    with uvicorn_server(outer) as base:
        response = httpx.post(base + "/admin/_telemetry/v1/events", json=[{"type": "A/B", "route": "/console/x"}])
        assert (response.status_code, response.json()) == (202, {"accepted": 1, "dropped": 0})
        assert httpx.get(base + "/admin/other").json()["path"] == "/admin/other"
    assert [e["url"] for e in local_events(tmp_path)] == ["/UNKNOWN"]


@pytest.mark.anyio
async def test_a_client_that_goes_away_mid_body_gets_no_answer_and_nothing_is_kept(tmp_path: Path) -> None:
    middleware = TelemetryMiddleware(Inner(), runtime=TelemetryRuntime(settings_for(tmp_path), env={}))
    messages = [{"type": "http.request", "body": b'[{"type": "A/B",', "more_body": True}, {"type": "http.disconnect"}]
    sent: list[Any] = []

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "path": EVENTS, "method": "POST", "headers": [(b"content-type", b"application/json")]}
    async with middleware.running():
        await middleware(scope, receive, send)
    assert (sent, local_events(tmp_path)) == ([], [])


@pytest.mark.parametrize(("length", "status"), [("²", 202), ("¹¹", 202), ("1e9", 202), ("-5", 202), ("99999999", 413)])
@pytest.mark.anyio
async def test_an_odd_content_length_is_not_a_500(tmp_path: Path, length: str, status: int) -> None:
    # uvicorn refuses these before the app sees them; an embedder's server may not.
    middleware = TelemetryMiddleware(Inner(), runtime=TelemetryRuntime(settings_for(tmp_path), env={}))
    body = json.dumps([{"type": "A/B", "route": "/console"}]).encode()
    sent: list[Message] = []
    headers = [(b"content-type", b"application/json"), (b"content-length", length.encode("latin-1"))]
    scope = {
        "type": "http",
        "method": "POST",
        "path": EVENTS,
        "root_path": "",
        "headers": headers,
        "query_string": b"",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    async with middleware.running():
        await middleware(scope, receive, send)
    assert sent[0]["status"] == status


def test_local_mode_answers_503_with_retry_after_once_the_event_file_is_full(tmp_path: Path) -> None:
    middleware = TelemetryMiddleware(
        Inner(), runtime=TelemetryRuntime(settings_for(tmp_path, spool_max_bytes=1500), env={})
    )
    batch = [{"type": "A/B", "route": "/console/settings/about"}] * 3
    with uvicorn_server(middleware) as base:
        first = httpx.post(base + EVENTS, json=batch)
        second = httpx.post(base + EVENTS, json=batch)
    assert (first.status_code, second.status_code, second.headers["retry-after"]) == (202, 503, "60")
    assert len(local_events(tmp_path)) == 3


def test_refused_batches_and_dropped_events_are_counted_by_reason(tmp_path: Path) -> None:
    middleware = TelemetryMiddleware(Inner(), runtime=TelemetryRuntime(settings_for(tmp_path), env={}))
    with uvicorn_server(middleware) as base:
        assert httpx.post(base + EVENTS, content=b"{", headers={"content-type": "application/json"}).status_code == 400
        with websockets.sync.client.connect(base.replace("http", "ws") + "/_telemetry/v1/ws") as ws:
            ws.send("[")
            assert json.loads(ws.recv(timeout=5)) == {"error": "invalid JSON"}
            ws.send(b"binary")
            assert json.loads(ws.recv(timeout=5)) == {"error": "binary message"}
        batch = [
            {"type": "App/ONGOING_REQUEST", "route": "/console"},
            {"type": 7, "route": "/console"},
            {"type": "A/B", "route": "/console"},
        ]
        assert httpx.post(base + EVENTS, json=batch).json() == {"accepted": 1, "dropped": 2}
        text = middleware.runtime.metrics.render().decode()
    for line in [
        'console_proxy_batches_rejected_total{reason="invalid_json",source="console"} 2.0',
        'console_proxy_batches_rejected_total{reason="binary_message",source="console"} 1.0',
        'console_proxy_events_dropped_total{reason="action_dropped",source="console"} 1.0',
        'console_proxy_events_dropped_total{reason="bad_type",source="console"} 1.0',
        'console_proxy_events_received_total{source="console"} 3.0',
        'console_proxy_events_accepted_total{source="console"} 1.0',
    ]:
        assert line in text


def test_a_full_local_file_is_a_503_counted_in_metrics(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, spool_max_bytes=100)
    middleware = TelemetryMiddleware(Inner(), runtime=TelemetryRuntime(settings, env={}))
    with uvicorn_server(middleware) as base:
        response = httpx.post(base + EVENTS, json=[{"type": "A/B", "route": "/console/" + "x" * 200}])
        assert (response.status_code, response.headers["retry-after"]) == (503, "60")
        text = middleware.runtime.metrics.render().decode()
    assert 'console_proxy_batches_rejected_total{reason="local_file_full",source="console"} 1.0' in text


@pytest.mark.parametrize(
    "given",
    [{}, {"settings": Settings(), "runtime": TelemetryRuntime(Settings())}],
    ids=["neither", "both"],
)
def test_settings_or_a_runtime_exactly_one(given: dict[str, Any]) -> None:
    with pytest.raises(TypeError) as refused:
        TelemetryMiddleware(Inner(), **given)
    assert str(refused.value) == "TelemetryMiddleware takes settings= or runtime=, exactly one of them"


def test_parts_go_to_the_runtime_not_the_middleware(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        TelemetryMiddleware(Inner(), settings=settings_for(tmp_path), sink="a sink")  # type: ignore[call-arg]


async def _oversized_post(middleware: TelemetryMiddleware, *, declared: bool) -> int:
    # Fresh chunks each time: a leak keeps them, so it shows as retained memory.
    messages = [
        {"type": "http.request", "body": bytes(40_000), "more_body": True},
        {"type": "http.request", "body": bytes(40_000), "more_body": False},
    ]
    headers = [(b"content-type", b"application/json")] + ([(b"content-length", b"80000")] if declared else [])
    scope = {"type": "http", "method": "POST", "path": EVENTS, "root_path": "", "headers": headers}
    statuses: list[int] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await middleware(scope, receive, send)
    return statuses[0]


@pytest.mark.anyio
@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "declared-length"])
async def test_oversized_bodies_are_not_kept_alive_by_a_refusal(tmp_path: Path, declared: bool) -> None:
    # A refusal raised as one shared exception instance kept every raise's frames in its traceback, and with them
    # each request's body: 200 such requests kept about 16 MB here.
    middleware = TelemetryMiddleware(Inner(), runtime=TelemetryRuntime(settings_for(tmp_path), env={}))
    async with middleware.running():
        for _ in range(20):
            assert await _oversized_post(middleware, declared=declared) == 413
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            statuses = {await _oversized_post(middleware, declared=declared) for _ in range(200)}
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert statuses == {413}
    assert grown < 1_000_000
