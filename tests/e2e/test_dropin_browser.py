"""Real Chromium on every console era of the Hasura stand-in, through the gate in reverse-proxy mode.

`telemetry.hasura.io` resolves to a trap that counts every connection made to it (it must count none), and the
CDN's name to a stand-in CDN over TLS. The page, its bundles (the stand-in's, holding the literal telemetry URL and
sending each era's real messages) and the API come as Hasura serves them; the gate changes only what docs/design.md,
"Reverse-proxy mode" says. Figures go to test-output/dropin-browser.jsonl.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from support import standin_console
from support.browser import CHROMIUM, CHROMIUM_ARGS, OUTPUT
from support.hasura_standin import StandIn, serve_standin
from support.servers import ServeProcess, start_serve
from support.tls import make_certificates

pytestmark = pytest.mark.browser

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
TELEMETRY_HOST = "telemetry.hasura.io"
# The gates: (name, flags beside --hasura-url)
GATES = {"on": [], "off": ["--enable-telemetry", "false"], "alone": ["--gate-decides-console", "true"]}
DONE = """() => {
  const s = window.__standin;
  return !!s && s.query !== null && s.subscription.closed !== null
    && (!s.telemetryOn || (s.sent === %d && s.acks.length === s.sent));
}"""


class Trap:
    """A listener that stands for telemetry.hasura.io: every connection to it is counted and dropped."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._serve, daemon=True, name="telemetry trap")
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.thread.join(10)
        self.sock.close()


@dataclasses.dataclass
class Deployment:
    """The stand-in (and its CDN), the trap, and one gate per way of deciding."""

    standin: StandIn
    hasura: str
    cdn_port: int
    trap: Trap
    gates: dict[str, ServeProcess] = dataclasses.field(default_factory=dict)
    states: dict[str, Path] = dataclasses.field(default_factory=dict)

    def kept(self, gate: str) -> list[tuple[str, str, str, str | None]]:
        path = self.states[gate] / "events.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [
            (batch["topic"], event["event_type"], event["url"], event.get("console_type"))
            for batch in map(json.loads, lines)
            for event in batch["data"]
        ]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("dropin")
    certs = make_certificates(tmp / "certs", standin_console.CDN_HOST)
    standin = StandIn()
    trap = Trap()
    with contextlib.ExitStack() as stack:
        stack.callback(trap.close)
        _, hasura = stack.enter_context(serve_standin(standin))
        _, cdn = stack.enter_context(serve_standin(standin, ssl_certfile=str(certs.cert), ssl_keyfile=str(certs.key)))
        found = Deployment(standin, hasura, int(cdn.rsplit(":", 1)[1]), trap)
        for name, flags in GATES.items():
            (tmp / name).mkdir()
            found.states[name] = tmp / name / "state"
            args = ["--hasura-url", hasura, "--state-dir", str(found.states[name]), "--server-uuid", SERVER_UUID]
            gate = start_serve(tmp / name, *args, *flags, ready_path="/_telemetry/v1/healthz")
            stack.callback(gate.stop)
            found.gates[name] = gate
        yield found


@pytest.fixture(scope="module")
def chromium(deployment: Deployment) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium", pytrace=False)
    rules = f"MAP {TELEMETRY_HOST} 127.0.0.1:{deployment.trap.port}, "
    rules += f"MAP {standin_console.CDN_HOST} 127.0.0.1:{deployment.cdn_port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}"]
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclasses.dataclass
class Visit:
    state: dict[str, Any]
    sockets: list[str]
    requests: list[str]
    kept: list[tuple[str, str, str, str | None]]


def visit(deployment: Deployment, chromium: Browser, gate: str, era: str, *, page_says_on: bool = True) -> Visit:
    """Open the console of `era` through `gate` and wait until it has sent (and had answered) all it sends."""
    deployment.standin.era = era
    deployment.standin.enable_telemetry = page_says_on
    expected = len(standin_console.era_messages(era))
    before = len(deployment.kept(gate))
    context = chromium.new_context(ignore_https_errors=True)  # the CDN stand-in's certificate is a test CA's
    sockets: list[str] = []
    requests: list[str] = []
    try:
        context.on("request", lambda request: requests.append(request.url))
        page = context.new_page()
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(deployment.gates[gate].base + "/console")
        page.wait_for_function(DONE % expected, timeout=30_000)
        state = page.evaluate("window.__standin")
    finally:
        context.close()
    # Every message was answered 202 on the socket, so every kept event is in the file by now.
    return Visit(state, sockets, requests, deployment.kept(gate)[before:])


def report(line: dict[str, Any]) -> None:
    OUTPUT.mkdir(exist_ok=True)
    with open(OUTPUT / "dropin-browser.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


@pytest.mark.parametrize("era", standin_console.ERA_NAMES)
def test_every_eras_console_sends_its_events_to_the_gate_and_none_to_the_real_host(
    deployment: Deployment, chromium: Browser, era: str
) -> None:
    trapped = deployment.trap.connections
    seen = visit(deployment, chromium, "on", era)
    gate_socket = deployment.gates["on"].base.replace("http://", "ws://") + "/_telemetry/v1/ws"
    expected = Counter(kept for _, kept in standin_console.era_messages(era) if kept is not None)
    assert seen.state["opened"] == [gate_socket]
    assert seen.state["sent"] == len(standin_console.era_messages(era))
    assert Counter(seen.kept) == expected
    assert deployment.trap.connections == trapped
    assert [url for url in [*seen.sockets, *seen.requests] if TELEMETRY_HOST in url] == []
    assert seen.sockets == [gate_socket, deployment.gates["on"].base.replace("http://", "ws://") + "/v1/graphql"]
    # The API and a subscription through the gate, as the console uses them.
    assert seen.state["query"] == {"data": {"standin_now": "2026-12-01T08:15:02Z"}}
    subscription = seen.state["subscription"]
    assert (subscription["protocol"], subscription["ticks"], subscription["closed"]) == (
        "graphql-transport-ws",
        [1, 2, 3],
        1000,
    )
    from_cdn = [url for url in seen.requests if standin_console.CDN_HOST in url]
    assert bool(from_cdn) is (era == "cdn")
    report(
        {
            "era": era,
            "sent": seen.state["sent"],
            "kept": len(seen.kept),
            "dropped_by_rules": seen.state["sent"] - len(seen.kept),
            "telemetry_host_connections": deployment.trap.connections - trapped,
            "subscription_first_ms": round(subscription["firstMs"], 1),
            "subscription_complete_ms": round(subscription["completeMs"], 1),
        }
    )


@pytest.mark.parametrize("era", standin_console.ERA_NAMES)
def test_with_telemetry_off_the_page_opens_no_telemetry_socket_at_all(
    deployment: Deployment, chromium: Browser, era: str
) -> None:
    trapped = deployment.trap.connections
    seen = visit(deployment, chromium, "off", era)
    assert (seen.state["telemetryOn"], seen.state["opened"], seen.state["refused"]) == (False, [], None)
    assert seen.sockets == [deployment.gates["off"].base.replace("http://", "ws://") + "/v1/graphql"]
    assert seen.state["subscription"]["ticks"] == [1, 2, 3]
    assert seen.kept == []
    assert deployment.trap.connections == trapped


def test_the_gate_and_hasura_must_both_say_on_unless_the_gate_decides_alone(
    deployment: Deployment, chromium: Browser
) -> None:
    # Hasura's page says off (HASURA_GRAPHQL_ENABLE_TELEMETRY=false on the server): no socket by default...
    both = visit(deployment, chromium, "on", "v2", page_says_on=False)
    assert (both.state["telemetryOn"], both.state["opened"], both.kept) == (False, [], [])
    # ...and with --gate-decides-console, the gate's decision alone: the events flow.
    alone = visit(deployment, chromium, "alone", "v2", page_says_on=False)
    assert alone.state["telemetryOn"] is True
    assert alone.state["opened"] == [deployment.gates["alone"].base.replace("http://", "ws://") + "/_telemetry/v1/ws"]
    assert len(alone.kept) == sum(1 for _, kept in standin_console.era_messages("v2") if kept is not None)


def test_without_the_gate_the_same_console_does_try_the_real_host(deployment: Deployment, chromium: Browser) -> None:
    # The control: the trap sees the console that is not behind the gate, so its zero above means something.
    deployment.standin.era = "v2"
    deployment.standin.enable_telemetry = True
    trapped = deployment.trap.connections
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(deployment.hasura + "/console")
        page.wait_for_function("() => window.__standin && window.__standin.closes >= 1", timeout=30_000)
        opened = page.evaluate("window.__standin.opened")
    finally:
        context.close()
    assert opened[0] == standin_console.TELEMETRY_LITERAL
    assert deployment.trap.connections > trapped
