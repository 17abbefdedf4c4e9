"""`console-proxy status` in reverse-proxy mode: where it relays, and the running gate's rewrites."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from console_proxy.cli.proxy_status import gate_url, proxy_lines
from console_proxy.core.settings import Settings


def test_nothing_is_said_outside_reverse_proxy_mode() -> None:
    assert proxy_lines(Settings()) == []


def test_the_running_gates_rewrites_are_read_back() -> None:
    asked: list[str] = []

    def gate(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, json={"enabled": True, "rewrites": {"page": 3, "script": 5}})

    settings = Settings(host="0.0.0.0", port=8080, hasura_url="http://user:pw@hasura:8080/?x=1")
    assert proxy_lines(settings, transport=httpx.MockTransport(gate)) == [
        "reverse proxy: relaying to http://hasura:8080/?...; the console's telemetry is on when the gate's decision"
        " and Hasura's page both say on",
        "rewrites: 3 console pages given the page script, 5 scripts (the gate at http://127.0.0.1:8080)",
    ]
    assert asked == ["http://127.0.0.1:8080/_telemetry/v1/status"]


def test_no_gate_answering_is_said_so() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    settings = Settings(hasura_url="http://hasura:8080", gate_decides_console=True)
    assert proxy_lines(settings, transport=httpx.MockTransport(down)) == [
        "reverse proxy: relaying to http://hasura:8080; the console's telemetry is on when the gate's decision says on"
        " (--gate-decides-console)",
        "rewrites: unknown (no gate in reverse-proxy mode answers at http://127.0.0.1:9695)",
    ]


@pytest.mark.parametrize(
    ("host", "ssl", "url"),
    [
        ("127.0.0.1", False, "http://127.0.0.1:9695"),
        ("::", False, "http://127.0.0.1:9695"),
        ("::1", True, "https://[::1]:9695"),
    ],
)
def test_gate_url(host: str, ssl: bool, url: str) -> None:
    settings = Settings(host=host, ssl_certfile=Path("cert.pem") if ssl else None)
    assert gate_url(settings) == url
