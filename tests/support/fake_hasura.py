"""A fake Hasura server for tests: a real HTTP server on a free loopback port, in a thread.

It answers `POST /v1/metadata {"type": "get_catalog_state", "args": {}}` with `{"id": ...}` and
`GET /v1/version` with `{"version": ...}`, checks `X-Hasura-Admin-Secret` the way Hasura does, records
every request, and can be made slow (before the headers or in the middle of the body) or taken down.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVER_UUID = "6a9e7d1c-3b5f-4e2a-9c8d-0f1e2d3c4b5a"
VERSION = "v2.40.0"


@dataclasses.dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclasses.dataclass
class FakeHasura:
    """What the server answers; change the fields between requests."""

    server_uuid: object = SERVER_UUID
    version: object = VERSION
    admin_secret: str | None = None
    status: int = 200
    raw_body: bytes | None = None  # sent instead of the JSON answer
    delay_s: float = 0.0  # before the status line
    stall_body_s: float = 0.0  # after the headers and half the body
    seen: list[Seen] = dataclasses.field(default_factory=list)
    stopping: threading.Event = dataclasses.field(default_factory=threading.Event)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def requests(self, path: str) -> list[Seen]:
        with self.lock:
            return [seen for seen in self.seen if seen.path == path]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self, method: str) -> None:
        fake = self.server.fake
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        with fake.lock:
            fake.seen.append(Seen(method, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if fake.delay_s and fake.stopping.wait(fake.delay_s):
            return
        status, document = self._route(fake, method, body)
        data = fake.raw_body if fake.raw_body is not None else json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fake.stall_body_s:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if fake.stopping.wait(fake.stall_body_s):
                return
            data = data[len(data) // 2 :]
        self.wfile.write(data)

    def _route(self, fake: FakeHasura, method: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and self.path == "/v1/version":
            return fake.status, {"version": fake.version, "server_type": "ce"}
        if method == "POST" and self.path == "/v1/metadata":
            if fake.admin_secret is not None and self.headers.get("x-hasura-admin-secret") != fake.admin_secret:
                return 400, {
                    "path": "$",
                    "error": "invalid x-hasura-admin-secret/x-hasura-access-key",
                    "code": "access-denied",
                }
            if body != {"type": "get_catalog_state", "args": {}}:
                return 400, {"path": "$", "error": "unexpected request", "code": "parse-failed"}
            return fake.status, {"id": fake.server_uuid, "cli_state": {}, "console_state": {}}
        return 404, {"path": "$", "error": "resource does not exist", "code": "not-found"}

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeHasura) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the point of the slow tests) is not an error here


@contextlib.contextmanager
def fake_hasura(fake: FakeHasura | None = None) -> Iterator[tuple[FakeHasura, str]]:
    """Serve a FakeHasura; yield it and its base URL. On exit the server stops and its port is closed."""
    fake = fake or FakeHasura()
    server = _Server(fake)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        fake.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
