from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

from console_proxy.asgi.budgets import ClientBudget, client_key
from console_proxy.asgi.hosts import trusted_hosts
from console_proxy.asgi.origins import allowed_origins, foreign_origin, normalize_origin
from console_proxy.core.settings import Settings

from support.redis_server import RedisServer
from support.servers import free_port

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


def test_trusted_hosts_are_the_bound_address_loopback_and_the_allowed_ones() -> None:
    assert trusted_hosts(Settings(host="0.0.0.0", allowed_host=("console.example.com",))) == [
        "0.0.0.0",
        "localhost",
        "127.0.0.1",
        "[::1]",
        "console.example.com",
    ]
    assert trusted_hosts(Settings(host="::1")) == ["[::1]", "localhost", "127.0.0.1"]


def test_client_key_is_the_peer_and_the_origin() -> None:
    assert client_key(scope()) == "10.0.0.1"
    assert client_key(scope(origin="http://A.example")) == "10.0.0.1 http://a.example"


@pytest.mark.anyio
async def test_a_budget_grants_the_burst_then_refuses_with_a_retry_after() -> None:
    budget = ClientBudget(rate=10.0, burst=50)
    assert [await budget.take("a", 20) for _ in range(3)] == [None, None, 2]
    assert await budget.take("b", 20) is None  # another client has its own budget
    assert await budget.take("a", 0) is None
    assert await ClientBudget(rate=1.0, burst=5).take("c", 100) is None  # a batch over the burst costs the burst


@pytest.mark.anyio
async def test_the_in_process_budget_store_does_not_start_a_thread_on_every_hit() -> None:
    # limits' own memory storage starts a new 10 ms timer thread on a hit whenever the last one has ended.
    budget = ClientBudget(rate=1e9, burst=10**9)
    timers = set()
    for _ in range(10):
        assert await budget.take("a", 20) is None
        timers.add(budget._local.storage.timer)  # type: ignore[union-attr]
        await anyio.sleep(0.03)
    assert len(timers) <= 2  # the one made with the store, and at most one sweep a second


@pytest.mark.anyio
async def test_processes_sharing_a_redis_queue_share_each_clients_budget(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        one, two = (ClientBudget(rate=10.0, burst=50, redis_url=server.url) for _ in range(2))
        assert [await one.take("a", 20), await two.take("a", 20), await one.take("a", 20)] == [None, None, 2]
        assert await two.take("b", 20) is None
    finally:
        server.stop()


@pytest.mark.anyio
async def test_a_budget_store_that_fails_lets_events_pass_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    budget = ClientBudget(rate=10.0, burst=50, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    assert [await budget.take("a", 50) for _ in range(3)] == [None, None, None]
    # This test's own lines: a line another thread logs meanwhile is not this budget's doing.
    assert [r.getMessage() for r in caplog.records if r.thread == threading.get_ident()] == [
        "client budgets unavailable (ConnectionError); events pass unmetered"
    ]
