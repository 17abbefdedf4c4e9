"""Connection limits of the standalone server: hosts, half-open connections, idle and surplus WebSockets."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import statistics
import time
from pathlib import Path

import httpx
import pytest
import websockets.exceptions
import websockets.sync.client
from websockets.typing import Origin

from console_proxy.asgi.app import create_app
from console_proxy.core.settings import Settings
from console_proxy.server.config import OTHER_OPEN_FILES

from support.servers import serving, start_serve, uvicorn_server

EVENTS = "/_telemetry/v1/events"
WS = "/_telemetry/v1/ws"
FLOOD = 1000
BATCH = {"events": [{"type": "Data/SET_TABLE", "route": "/console/data"}]}


def settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(state_dir=tmp_path / "state", server_uuid="11111111-2222-4333-8444-555555555555", **overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("attacker.example", 400),
        ("localhost", 200),
        ("127.0.0.1", 200),
        ("console.example.com", 200),
        ("a.corp.example", 200),
        ("corp.example.evil", 400),
    ],
)
@pytest.mark.parametrize("path", ["/_telemetry/v1/status", "/_telemetry/v1/recent", "/metrics", "/healthz"])
def test_only_the_servers_own_host_names_are_answered(tmp_path: Path, host: str, status: int, path: str) -> None:
    app = create_app(settings(tmp_path, allowed_host=("console.example.com", "*.corp.example")), env={})
    with uvicorn_server(app) as base:
        port = base.rsplit(":", 1)[1]
        response = httpx.get(base + path, headers={"host": f"{host}:{port}", "origin": "http://evil.example"})
    assert response.status_code == status
    assert not any(name.startswith("access-control-") for name in response.headers)


def test_a_websocket_handshake_for_another_host_is_refused(tmp_path: Path) -> None:
    with uvicorn_server(create_app(settings(tmp_path), env={})) as base:
        port = int(base.rsplit(":", 1)[1])
        with _handshake(port, host="attacker.example") as refused, _handshake(port, host="localhost") as accepted:
            assert (refused.recv(12), accepted.recv(12)) == (b"HTTP/1.1 400", b"HTTP/1.1 101")


def test_websockets_over_the_limit_are_refused_and_an_idle_one_is_closed(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, max_websockets=2, websocket_idle_s=0.5), env={})
    with uvicorn_server(app) as base:
        url = base.replace("http://", "ws://") + WS
        with websockets.sync.client.connect(url) as first, websockets.sync.client.connect(url):
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                websockets.sync.client.connect(url)
            assert refused.value.response.status_code == 403
            with pytest.raises(websockets.exceptions.ConnectionClosedOK) as closed:
                first.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        # Both closed: room again.
        with websockets.sync.client.connect(url) as ws:
            ws.send('[{"type": "Data/SET_TABLE", "route": "/console/data"}]')
            assert ws.recv(timeout=10) == '{"accepted":1,"dropped":0}'


def _half_open(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /_telemetry/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
    return sock


def _handshake(port: int, host: str = "127.0.0.1", *, source: str = "127.0.0.1", origin: str = "") -> socket.socket:
    """A WebSocket handshake on a raw socket from `source` (no Origin unless given: not a page); the answer is left
    to read."""
    sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
    key = base64.b64encode(os.urandom(16)).decode()
    sent_origin = f"Origin: {origin}\r\n" if origin else ""
    sock.sendall(
        f"GET {WS} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{sent_origin}"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    sock.settimeout(30)
    return sock


def _idle_websocket(port: int) -> socket.socket:
    sock = _handshake(port)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(1000)
        assert chunk, answer
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 101 ") and answer.endswith(b"\r\n\r\n")
    return sock


def _answer(sock: socket.socket) -> bytes:
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(1000)
        assert chunk, answer
        answer += chunk
    return answer.split(b"\r\n", 1)[0]


def test_one_local_process_cannot_take_the_consoles_websocket_slots(tmp_path: Path) -> None:
    # The defaults: 1,024 WebSockets in all, 64 for one client. Every loopback address is one client.
    with serving(tmp_path, "--state-dir", str(tmp_path / "state")) as served:
        port = int(served.base.rsplit(":", 1)[1])
        held = [_handshake(port, source=f"127.0.0.{2 + i % 8}") for i in range(1024)]
        try:
            answers = [_answer(sock) for sock in held]
            # The console's page (its own Origin) is another client, with slots of its own.
            url = served.base.replace("http://", "ws://") + WS
            with websockets.sync.client.connect(url, origin=Origin(served.base)) as console:
                console.send(json.dumps(BATCH))
                assert console.recv(timeout=10) == '{"accepted":1,"dropped":0}'
        finally:
            for sock in held:
                sock.close()
        assert served.stop() == 0
    opened = answers.count(b"HTTP/1.1 101 Switching Protocols")
    print(f"1,024 WebSocket handshakes from one local process over 8 source addresses: {opened} opened")
    assert (opened, answers.count(b"HTTP/1.1 403 Forbidden")) == (64, 1024 - 64)
    assert served.output().count("WebSocket handshakes refused") == 1


def test_a_thousand_half_open_connections_and_idle_websockets_starve_nobody(tmp_path: Path) -> None:
    state = tmp_path / "state"
    # One client (every socket comes from loopback) may hold them all here: this is about the global limit.
    flood = str(FLOOD)
    args = ["--state-dir", str(state), "--request-timeout-s", "3", "--max-websockets", flood]
    args += ["--max-websockets-per-client", flood]
    with serving(tmp_path, *args) as served:
        port = int(served.base.rsplit(":", 1)[1])
        half_open = [_half_open(port) for _ in range(FLOOD)]
        idle = [_idle_websocket(port) for _ in range(FLOOD)]
        # Beyond --max-websockets: refused at the handshake, each one without a line of its own.
        for _ in range(100):
            with _handshake(port) as refused:
                assert refused.recv(12) == b"HTTP/1.1 403"
        try:
            latencies = []
            with httpx.Client(timeout=10) as client:
                for _ in range(20):
                    started = time.perf_counter()
                    assert client.get(served.base + "/healthz").status_code == 200
                    latencies.append(time.perf_counter() - started)
                assert client.get(served.base + "/console/").status_code == 200
                assert client.post(served.base + EVENTS, json=BATCH).status_code == 202
            print(
                f"/healthz beside {FLOOD} half-open connections and {FLOOD} idle WebSockets: "
                f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
            )
            # The half-open ones are cut off once the request deadline passes.
            for sock in half_open:
                sock.settimeout(30)
                assert sock.recv(100) == b""
        finally:
            for sock in half_open + idle:
                sock.close()
        assert served.stop() == 0
    lines = served.output().splitlines()
    assert len(lines) < 25, "\n".join(lines)
    assert "Traceback" not in served.output()


def test_an_invalid_utf8_frame_is_one_log_line(tmp_path: Path) -> None:
    with serving(tmp_path, "--state-dir", str(tmp_path / "state")) as served:
        port = int(served.base.rsplit(":", 1)[1])
        for _ in range(3):
            with _idle_websocket(port) as sock:
                mask = b"\x01\x02\x03\x04"
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"\xff\xfe"))
                sock.sendall(bytes([0x81, 0x80 | 2]) + mask + payload)
                assert sock.recv(2)[:1] == b"\x88"  # a close frame
        assert served.stop() == 0
    output = served.output()
    assert output.count("Invalid UTF-8 sequence received from client.") == 1
    assert "Traceback" not in output


def test_readyz_is_not_ready_while_the_local_file_cannot_take_a_batch(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, spool_max_bytes=2000), env={})
    big = [{"type": "Data/SET_TABLE", "route": "/console/data"}] * 5
    with uvicorn_server(app) as base:
        assert httpx.get(base + "/readyz").status_code == 200
        codes = [httpx.post(base + EVENTS, json=big).status_code for _ in range(4)]
        assert httpx.get(base + "/readyz").status_code == 503
        (tmp_path / "state" / "events.jsonl").rename(tmp_path / "state" / "full.jsonl")  # docs/serving.md's advice
        assert httpx.get(base + "/readyz").status_code == 200
        assert httpx.post(base + EVENTS, json=big).status_code == 202
    assert codes[0] == 202 and codes[-1] == 503


def test_connections_stay_within_the_open_files_limit_and_the_cap_is_said(tmp_path: Path) -> None:
    # The default --max-connections (2,048) under a limit of 256 open files the process cannot raise.
    limit = 256
    args = ("--state-dir", str(tmp_path / "state"), "--request-timeout-s", "3")
    served = start_serve(tmp_path, *args, wrap=lambda command: ["prlimit", f"--nofile={limit}:{limit}", "--", *command])
    try:
        port = int(served.base.rsplit(":", 1)[1])
        # Connections that send nothing (yet): each holds a descriptor until the request deadline.
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
        try:
            # The refused ones are answered at once; the others have nothing to read until their deadline.
            full = httpx.get(served.base + "/healthz", timeout=10)
            answers = []
            for sock in held:
                sock.setblocking(False)
                try:
                    answers.append(sock.recv(12))
                except BlockingIOError:
                    answers.append(b"")  # held open, waiting for its request: within the cap
            # Cut off by the request deadline, the held ones give their descriptors back.
            for sock in held:
                sock.setblocking(True)
                sock.settimeout(30)
                with contextlib.suppress(OSError):
                    while sock.recv(100):
                        pass
            after = httpx.get(served.base + "/healthz", timeout=10).status_code
        finally:
            for sock in held:
                sock.close()
    finally:
        code = served.stop()
    output = served.output()
    cap = limit - OTHER_OPEN_FILES
    print(
        f"{answers.count(b'')} connections held, {answers.count(b'HTTP/1.1 503')} refused with 503 under {limit} files"
    )
    assert (answers.count(b""), answers.count(b"HTTP/1.1 503"), full.status_code, after, code) == (
        cap,
        300 - cap,
        503,
        200,
        0,
    )
    assert output.count(f"--max-connections 2048 is more than the open-files limit ({limit}, ulimit -n)") == 1
    assert output.count("connections refused (503, closed at once)") == 1
    assert "Too many open files" not in output and "Traceback" not in output
