"""deploy/nginx/console-proxy.conf as shipped, in Debian's real nginx, in front of two `console-proxy serve
--workers 2` gates on one real redis-server, with a real collector behind them.

Only the addresses are the test's: the gates' name `proxy` resolves (through nginx's `resolver`, a small DNS server
standing in for Docker's) to 127.0.0.1 and 127.0.0.2, where the two gates listen on one port, as replicas do.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import websockets.sync.client
from websockets.typing import Origin

from support.collector import Collector, read_metrics
from support.dns import DnsServer
from support.nginx import running_nginx
from support.paths import ROOT
from support.redis_server import RedisServer
from support.servers import ServeProcess, free_port, start_serve

NGINX_FILE = ROOT / "deploy" / "nginx" / "console-proxy.conf"
SERVER_UUID = "11111111-2222-4333-8444-555555555555"
EVENTS = "/_telemetry/v1/events"
GATES = ("127.0.0.1", "127.0.0.2")
FAST = ("--batch-max-events", "20", "--batch-max-delay-s", "0.05")


def batch(*types: str) -> dict[str, object]:
    return {"events": [{"type": t, "route": "/console/data/db1/schema/s1/tables/t1/browse"} for t in types]}


@contextmanager
def deployment(
    tmp_path: Path, redis: RedisServer, collector: Collector, *extra: str
) -> Iterator[tuple[int, list[ServeProcess]]]:
    """nginx's port and the two gates."""
    port = free_port()
    with ExitStack() as stack:
        gates: list[ServeProcess] = []
        for n, host in enumerate(GATES):
            home = tmp_path / f"gate{n}"
            home.mkdir()
            served = start_serve(
                home,
                *("--upstream", collector.url, "--queue", redis.url, "--server-uuid", SERVER_UUID, "--workers", "2"),
                *("--state-dir", str(home / "state"), *FAST, *extra),
                host=host,
                port=port,
                ready_path="/readyz",
            )
            stack.callback(served.stop)
            assert served.proc.poll() is None, served.output()
            gates.append(served)
        dns = stack.enter_context(DnsServer("proxy", list(GATES)))
        nginx_port = stack.enter_context(
            running_nginx(
                tmp_path / "nginx",
                NGINX_FILE,
                {
                    "resolver 127.0.0.11 ": f"resolver 127.0.0.1:{dns.port} ",
                    "http://proxy:9695": f"http://proxy:{port}",
                },
            )
        )
        yield nginx_port, gates


def events_answered(gate: ServeProcess) -> float:
    values = read_metrics(httpx.get(gate.base + "/metrics").text)
    return values.get("console_proxy_http_requests_total{path=events,status=202}", 0.0)


def test_a_browsers_post_and_websocket_through_nginx_are_kept_by_either_gate(
    tmp_path: Path, redis_server: RedisServer, collector: Collector
) -> None:
    with deployment(tmp_path, redis_server, collector) as (port, gates):
        public = f"http://localhost:{port}"
        # As a browser at the public address sends it: its Host, its Origin, sendBeacon's text/plain.
        browser = {"origin": public, "sec-fetch-site": "same-origin", "content-type": "text/plain;charset=UTF-8"}
        answers = [
            httpx.post(public + EVENTS, content=json.dumps(batch(f"Nginx/POST_{i}")), headers=browser) for i in range(8)
        ]
        assert [(a.status_code, a.json()) for a in answers] == [(202, {"accepted": 1, "dropped": 0})] * 8
        # The Origin check still holds behind nginx: a page elsewhere is refused.
        foreign = httpx.post(
            public + EVENTS, json=batch("Nginx/FOREIGN"), headers={"origin": "http://attacker.example"}
        )
        assert (foreign.status_code, foreign.json()) == (403, {"error": "origin not allowed"})
        with websockets.sync.client.connect(f"ws://localhost:{port}/_telemetry/v1/ws", origin=Origin(public)) as ws:
            ws.send(json.dumps(batch("Nginx/WS_A", "Nginx/WS_B")))
            assert json.loads(ws.recv(timeout=10)) == {"accepted": 2, "dropped": 0}
        delivered = collector.wait_for_events(10)
        assert sorted(e["event_type"] for e in delivered) == sorted(
            [f"Nginx/POST_{i}" for i in range(8)] + ["Nginx/WS_A", "Nginx/WS_B"]
        )
        assert all(e["server_uuid"] == SERVER_UUID for e in delivered)
        # nginx asked the resolver for the name and sent requests to both addresses it has, round robin.
        answered = [events_answered(gate) for gate in gates]
        print(f"\nthrough nginx: 8 POSTs 202, the WebSocket's batch 202; events answered 202 by each gate: {answered}")
        assert all(n >= 1 for n in answered)


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


@contextmanager
def client_addresses(count: int) -> Iterator[list[str]]:
    """Addresses on the loopback interface that are not loopback addresses, as clients elsewhere have: the gate
    counts all of 127.0.0.0/8 as one client, however a trusted proxy names them. Random in 198.18.0.0/15 (the
    benchmarking range), so that two suites running at once do not share them; root adds them (CI runs as root)."""
    base = random.randrange(1, 250)
    addresses = [f"198.18.{base}.{10 + n}" for n in range(count)]
    added: list[str] = []
    try:
        for address in addresses:
            done = subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], capture_output=True, text=True)
            assert done.returncode == 0, f"adding a test address to lo needs root: {done.stderr.strip()}"
            added.append(address)
        yield addresses
    finally:
        for address in added:
            subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", "lo"], capture_output=True, check=False)


def test_clients_behind_nginx_get_their_own_budgets(
    tmp_path: Path, redis_server: RedisServer, collector: Collector
) -> None:
    # The gates trust nginx (its connections come from 127.0.0.1) to say who the client is: X-Forwarded-For.
    budget = ("--client-burst", "3", "--client-rate", "0.01", "--forwarded-allow-ips", "127.0.0.1")
    with deployment(tmp_path, redis_server, collector, *budget) as (port, _gates):
        public = f"http://127.0.0.1:{port}"

        def client(address: str) -> httpx.Client:
            return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10.0)

        with client_addresses(2) as (one, two), client(one) as first, client(two) as second:
            assert first.post(public + EVENTS, json=batch("A/ONE", "A/TWO", "A/THREE")).status_code == 202
            over = first.post(public + EVENTS, json=batch("A/FOUR"))
            assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
            # Another client behind the same nginx still has its whole budget.
            assert second.post(public + EVENTS, json=batch("B/ONE", "B/TWO", "B/THREE")).status_code == 202
