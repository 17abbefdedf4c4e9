"""One client's budget cannot be multiplied by what a client chooses: X-Forwarded-For from an untrusted peer, the
port in Host and Origin, the source address within 127.0.0.0/8; a trusted proxy's word is taken, and only its.

Each test runs a real `console-proxy serve` with a burst of BURST events and a rate so low that nothing refills
during the test: one client's allowance is BURST events, exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import websockets.sync.client

from support.servers import ServeProcess, serving

EVENTS = "/_telemetry/v1/events"
WS = "/_telemetry/v1/ws"
BURST = 100
BATCH = 10
ATTEMPTS = 30  # 300 events sent: three allowances' worth
ONE_EVENT = {"type": "Data/SET_TABLE", "route": "/console/data"}
# No refill within a test: the window is BURST / RATE = 10,000 s.
ALLOWANCE = ("--client-burst", str(BURST), "--client-rate", "0.01")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServeProcess]:
    with serving(tmp_path, "--state-dir", str(tmp_path / "state"), *ALLOWANCE) as proxy:
        yield proxy


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def accepted(base: str, headers_of: Callable[[int], dict[str, str]], *, local_address: str = "127.0.0.1") -> int:
    """Events accepted of ATTEMPTS batches of BATCH, the i-th sent with `headers_of(i)` from `local_address`."""
    total = 0
    transport = httpx.HTTPTransport(local_address=local_address)
    with httpx.Client(transport=transport, timeout=10) as client:
        for i in range(ATTEMPTS):
            response = client.post(base + EVENTS, json=[ONE_EVENT] * BATCH, headers=headers_of(i))
            assert response.status_code in (202, 429), (response.status_code, response.text)
            if response.status_code == 202:
                total += response.json()["accepted"]
    return total


def test_x_forwarded_for_from_an_untrusted_peer_makes_no_new_client(served: ServeProcess) -> None:
    # uvicorn's own default believed X-Forwarded-For from 127.0.0.1: every rotation was a new client.
    got = accepted(served.base, lambda i: {"x-forwarded-for": f"198.51.100.{i}", "x-forwarded-proto": "https"})
    assert got == BURST


def test_forwarded_from_an_untrusted_peer_makes_no_new_client(served: ServeProcess) -> None:
    assert accepted(served.base, lambda i: {"forwarded": f"for=198.51.100.{i};proto=https"}) == BURST


def test_rotating_the_port_in_host_and_origin_makes_no_new_client(served: ServeProcess) -> None:
    # The key held the raw Origin: each port was a new client, and still the console's own origin.
    def rotated(i: int) -> dict[str, str]:
        return {"host": f"127.0.0.1:{20000 + i}", "origin": f"http://127.0.0.1:{20000 + i}"}

    assert accepted(served.base, rotated) == BURST


def test_rotating_the_spelling_of_an_allowed_origin_makes_no_new_client(tmp_path: Path) -> None:
    args = ("--state-dir", str(tmp_path / "state"), "--allowed-origin", "https://console.example.com", *ALLOWANCE)
    spellings = ["https://console.example.com", "HTTPS://Console.Example.COM", "https://console.example.com:443"]
    with serving(tmp_path, *args) as proxy:
        assert accepted(proxy.base, lambda i: {"origin": spellings[i % 3], "sec-fetch-site": "cross-site"}) == BURST


def test_every_source_address_in_loopback_is_one_client(served: ServeProcess) -> None:
    got = sum(accepted(served.base, lambda i: {}, local_address=f"127.0.0.{n}") for n in range(2, 6))
    assert got == BURST


def test_the_console_page_and_a_local_script_keep_budgets_of_their_own(served: ServeProcess) -> None:
    script = accepted(served.base, lambda i: {})
    page = accepted(served.base, lambda i: {"origin": served.base})
    assert (script, page) == (BURST, BURST)


def test_empty_and_invalid_messages_are_charged_too(served: ServeProcess) -> None:
    codes = []
    with httpx.Client(timeout=10) as client:
        # Each costs one event: nothing kept, nothing valid, one event dropped, an empty batch.
        for body in [b"[]", b"{", b"[1]", b'{"events": []}'] * (BURST // 4):
            codes.append(client.post(served.base + EVENTS, content=body, headers={"content-type": "application/json"}))
        over = client.post(served.base + EVENTS, json=[ONE_EVENT])
    assert {r.status_code for r in codes} <= {202, 400} and over.status_code == 429
    url = served.base.replace("http://", "ws://") + WS
    with websockets.sync.client.connect(url) as ws:
        ws.send("not json")
        assert json.loads(ws.recv(timeout=10)) == {"error": "too many events from this client"}
        ws.send(b"\x00")
        assert json.loads(ws.recv(timeout=10)) == {"error": "too many events from this client"}


def test_a_trusted_proxy_says_who_the_client_is(tmp_path: Path) -> None:
    args = ("--state-dir", str(tmp_path / "state"), "--forwarded-allow-ips", "127.0.0.1", *ALLOWANCE)
    with serving(tmp_path, *args) as proxy:
        base = proxy.base
        # What the client wrote left of the proxy's own entry is not believed: one client, one allowance.
        forged = accepted(base, lambda i: {"x-forwarded-for": f"198.51.100.{i}, 203.0.113.7"})
        # Two clients the proxy names are two budgets; the same client via Forwarded is the same budget.
        second = accepted(base, lambda i: {"x-forwarded-for": "203.0.113.8"})
        same = accepted(base, lambda i: {"forwarded": 'for="203.0.113.8:4711";proto=http'})
        # Both kinds at once, saying different things: neither is believed, and the peer is the client.
        mixed = accepted(base, lambda i: {"x-forwarded-for": f"203.0.113.{20 + i}", "forwarded": "for=203.0.113.9"})
        # From another peer than the proxy, the headers are ignored: that peer is itself the client.
        other = accepted(base, lambda i: {"x-forwarded-for": f"203.0.113.{40 + i}"}, local_address="127.0.0.2")
    assert (forged, second, same, mixed, other) == (BURST, BURST, 0, BURST, 0)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"x-forwarded-host": "console.example.com", "x-forwarded-proto": "https"}, 202),
        ({"forwarded": "for=203.0.113.1;host=console.example.com;proto=https"}, 202),
        ({"x-forwarded-host": "console.example.com", "x-forwarded-proto": "http"}, 403),  # the page's scheme differs
        ({"x-forwarded-host": "attacker.example", "x-forwarded-proto": "https"}, 400),  # the Host check's, forwarded
    ],
)
def test_the_origin_and_host_checks_use_what_a_trusted_proxy_gives(
    tmp_path: Path, headers: dict[str, str], status: int
) -> None:
    args = ("--state-dir", str(tmp_path / "state"), "--forwarded-allow-ips", "127.0.0.1")
    sent = {"origin": "https://console.example.com", "sec-fetch-site": "same-origin", **headers}
    with serving(tmp_path, *args, "--allowed-host", "console.example.com") as proxy:
        response = httpx.post(proxy.base + EVENTS, json=[ONE_EVENT], headers=sent)
        # The same headers from a peer that is not the proxy change nothing: its Host is 127.0.0.1, so the
        # console.example.com page is foreign.
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as elsewhere:
            untrusted = elsewhere.post(proxy.base + EVENTS, json=[ONE_EVENT], headers=sent)
    assert (response.status_code, untrusted.status_code) == (status, 403)
