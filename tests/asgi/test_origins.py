from __future__ import annotations

import pytest

from console_proxy.asgi.hosts import trusted_hosts
from console_proxy.asgi.origins import (
    NO_ORIGIN,
    OWN_ORIGIN,
    allowed_origins,
    foreign_origin,
    normalize_origin,
    origin_of,
)
from console_proxy.asgi.proxy_headers import TrustedProxies, resolve
from console_proxy.core.settings import Settings

ALLOWED = allowed_origins(["https://console.example.com", "http://localhost:3000"])


def scope(**headers: str) -> dict[str, object]:
    raw = [(k.replace("_", "-").encode(), v.encode("latin-1")) for k, v in headers.items()]
    return {"type": "http", "headers": raw, "client": ("10.0.0.1", 5000)}


@pytest.mark.parametrize(
    ("headers", "foreign"),
    [
        ({}, False),  # curl, a CLI, a server
        ({"host": "127.0.0.1:9695"}, False),
        ({"host": "127.0.0.1:9695", "origin": "http://127.0.0.1:9695", "sec_fetch_site": "same-origin"}, False),
        ({"host": "proxy.example", "origin": "https://proxy.example"}, False),  # TLS ended in front
        ({"host": "proxy.example:443", "origin": "https://proxy.example"}, False),
        ({"host": "127.0.0.1:9695", "origin": "http://127.0.0.1:8080", "sec_fetch_site": "same-site"}, True),
        ({"host": "127.0.0.1:9695", "origin": "http://evil.example"}, True),
        ({"host": "127.0.0.1:9695", "origin": "null"}, True),
        ({"host": "127.0.0.1:9695", "sec_fetch_site": "cross-site"}, True),
        ({"host": "127.0.0.1:9695", "origin": "http://127.0.0.1:9695", "sec_fetch_site": "cross-site"}, True),
        ({"host": "127.0.0.1:9695", "origin": "https://console.example.com", "sec_fetch_site": "cross-site"}, False),
        ({"host": "127.0.0.1:9695", "origin": "http://LOCALHOST:3000"}, False),
        ({"origin": "http://127.0.0.1:9695"}, True),  # no Host: nothing to be the same as
    ],
)
def test_foreign_origin(headers: dict[str, str], foreign: bool) -> None:
    assert foreign_origin(scope(**headers), ALLOWED) is foreign


@pytest.mark.parametrize(
    ("headers", "decision"),
    [
        ({}, NO_ORIGIN),
        ({"host": "127.0.0.1:9695", "origin": "http://127.0.0.1:9695"}, OWN_ORIGIN),
        ({"host": "127.0.0.1:1234", "origin": "http://127.0.0.1:1234"}, OWN_ORIGIN),  # any port: the same decision
        ({"host": "x", "origin": "HTTPS://Console.Example.com:443"}, "https://console.example.com"),
        ({"host": "127.0.0.1:9695", "origin": "http://evil.example"}, None),
    ],
)
def test_the_origin_decision_is_one_of_few_names_whatever_the_headers_say(
    headers: dict[str, str], decision: str | None
) -> None:
    assert origin_of(scope(**headers), ALLOWED) == decision


@pytest.mark.parametrize(
    ("proto", "origin", "decision"),
    [
        ("https", "https://console.example.org", OWN_ORIGIN),
        ("http", "https://console.example.org", None),  # the proxy says the page was asked for over http
        ("https", "http://console.example.org", None),
        (None, "http://console.example.org", OWN_ORIGIN),  # no scheme given: only the host and port count
    ],
)
def test_the_scheme_counts_when_a_trusted_proxy_gave_it(proto: str | None, origin: str, decision: str | None) -> None:
    headers = {"host": "127.0.0.1:9695", "x_forwarded_host": "console.example.org", "origin": origin}
    if proto is not None:
        headers["x_forwarded_proto"] = proto
    trusted = TrustedProxies.parse(["10.0.0.1"])
    assert origin_of(resolve(scope(**headers), trusted), ALLOWED) == decision


@pytest.mark.parametrize(
    ("origin", "normalized"),
    [
        ("HTTPS://Console.Example.com:443", "https://console.example.com"),
        ("http://localhost:80", "http://localhost"),
        ("http://[::1]:9695", "http://[::1]:9695"),
        ("null", None),
        ("file://", None),
        ("https://a.example/path", None),
    ],
)
def test_normalize_origin(origin: str, normalized: str | None) -> None:
    assert normalize_origin(origin) == normalized


def test_trusted_hosts_are_the_bound_address_loopback_the_collector_and_the_allowed_ones() -> None:
    assert trusted_hosts(Settings(host="0.0.0.0", allowed_host=("console.example.com",))) == [
        "0.0.0.0",
        "localhost",
        "127.0.0.1",
        "[::1]",
        "telemetry.hasura.io",
        "console.example.com",
    ]
    assert trusted_hosts(Settings(host="::1")) == ["[::1]", "localhost", "127.0.0.1", "telemetry.hasura.io"]


def test_the_public_url_host_is_trusted() -> None:
    settings = Settings(hasura_url="http://hasura:8080", public_url="https://Hasura.Example.com/api")
    assert trusted_hosts(settings)[-1] == "hasura.example.com"
