from __future__ import annotations

import pytest

from console_proxy.asgi.hosts import trusted_hosts
from console_proxy.asgi.origins import allowed_origins, foreign_origin, normalize_origin
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
