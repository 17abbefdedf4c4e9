"""A real telemetry collector for tests: an HTTP server on a free loopback port, in a thread.

It records every request (headers and body), answers 200 unless told otherwise (a status with an optional
Retry-After, a hang past the client's timeout, a connection reset), can be taken down and brought back on
the same port, and counts the connections it accepted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclasses.dataclass(frozen=True)
class Answer:
    """What the collector does with one request."""

    status: int = 200
    retry_after: str | None = None
    hang_s: float = 0.0
    reset: bool = False
    delay_s: float = 0.0  # answer, but only after this long (a slow collector)
    drip_s: float = 0.0  # send the headers at once, then the body one byte every drip_s seconds


@dataclasses.dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    status: int | None  # None: hung, reset or dripped, no whole answer sent
    at: float = 0.0  # time.monotonic() when it was received


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, collector: Collector, port: int) -> None:
        self.collector = collector
        super().__init__(("127.0.0.1", port), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self.collector.lock:
            self.collector.connections += 1
        return conn, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets and hangs break connections on purpose


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        collector = self.server.collector
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw
        answer = collector.next_answer()
        status = None if answer.hang_s or answer.reset or answer.drip_s else answer.status
        with collector.lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            collector.requests.append(Received(self.path, headers, body, status, time.monotonic()))
        if answer.reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        if answer.hang_s:
            collector.release.wait(answer.hang_s)
            return
        if answer.delay_s:
            collector.release.wait(answer.delay_s)
        self.send_response(answer.status)
        if answer.retry_after is not None:
            self.send_header("Retry-After", answer.retry_after)
        body = b"{}" if not answer.drip_s else b'{"pad": "' + b"x" * 100 + b'"}'
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not answer.drip_s:
            self.wfile.write(body)
            return
        for byte in body:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            if collector.release.wait(answer.drip_s):
                return

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Collector:
    """Start with `with Collector() as c:`; `c.url` is where to POST."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.requests: list[Received] = []
        self.connections = 0
        self._answers: collections.deque[Answer] = collections.deque()
        self.default = Answer()  # the answer once the queued ones are used up
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/collect"

    def __enter__(self) -> Collector:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> None:
        """Listen (again) on the same port."""
        if self._server is None:
            self.release.clear()
            self._server = _Server(self, self.port)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()

    def down(self) -> None:
        """Stop listening: connections are refused until `up()`."""
        if self._server is not None:
            self.release.set()
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = self._thread = None

    def answer(self, *answers: Answer) -> None:
        """Use these answers for the next requests, in order; `default` (200) after them."""
        with self.lock:
            self._answers.extend(answers)

    def next_answer(self) -> Answer:
        with self.lock:
            return self._answers.popleft() if self._answers else self.default

    def delivered(self) -> list[Received]:
        """The requests answered with a 2xx."""
        with self.lock:
            return [r for r in self.requests if r.status is not None and 200 <= r.status < 300]

    def delivered_events(self) -> list[dict[str, Any]]:
        return [event for r in self.delivered() for event in r.body["data"]]

    def wait_for_events(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll until at least `n` events were delivered (or the timeout passed); return them."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.delivered_events()
            if len(events) >= n or time.monotonic() > deadline:
                return events
            time.sleep(0.02)

    async def events_soon(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """`wait_for_events` for async tests: polls without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.delivered_events()
            if len(events) >= n or time.monotonic() > deadline:
                return events
            await asyncio.sleep(0.02)


def read_metrics(text: str) -> dict[str, float]:
    """Prometheus text as {"name{label=value}": value} (samples without labels under their bare name)."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def invariant_holds(values: dict[str, float]) -> bool:
    """accepted = forwarded + spooled + dead_lettered + expired + lost, in one scrape."""
    return values["console_proxy_events_accepted_total"] == (
        values["console_proxy_events_forwarded_total"]
        + values["console_proxy_spool_events"]
        + values["console_proxy_events_dead_lettered_total"]
        + values["console_proxy_events_expired_total"]
        + values.get("console_proxy_events_lost_total", 0.0)
    )
