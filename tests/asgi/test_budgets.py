"""Client budgets: the key of a client, the in-process store's sweep, and the private limits hook it relies on."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from limits.storage import MemoryStorage

from console_proxy.asgi.budgets import SWEEP_EVERY_S, ClientBudget, SweepingMemoryStorage, client_key, peer_key
from console_proxy.core.errors import SinkRefused
from console_proxy.delivery.redis.queue import RedisQueue

from support.outbound import opaque
from support.redis_server import RedisServer
from support.servers import free_port

pytestmark = pytest.mark.anyio


def scope(**headers: str) -> dict[str, object]:
    raw = [(k.replace("_", "-").encode(), v.encode("latin-1")) for k, v in headers.items()]
    return {"type": "http", "headers": raw, "client": ("10.0.0.1", 5000)}


def test_the_installed_limits_still_has_the_hook_the_sweep_overrides() -> None:
    # The override is silently dead if limits renames it: then every hit starts a timer thread again.
    assert callable(vars(MemoryStorage).get("_MemoryStorage__schedule_expiry"))
    assert "_MemoryStorage__schedule_expiry" in vars(SweepingMemoryStorage)


def test_hits_start_limits_own_sweep_at_most_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[float] = []
    now = [100.0]
    monkeypatch.setattr(MemoryStorage, "_MemoryStorage__schedule_expiry", lambda self: started.append(now[0]))
    storage = SweepingMemoryStorage(clock=lambda: now[0])
    for at in (100.0, 100.2, 100.9, 100.0 + SWEEP_EVERY_S, 101.5, 102.1):
        now[0] = at
        storage.incr("client", 10)
    assert started == [100.0, 101.0, 102.1]


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("127.255.3.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.5", "loopback"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("unknown", "unknown"),
        (None, "unknown"),
    ],
)
def test_a_client_is_its_address_with_every_loopback_address_one(peer: str | None, key: str) -> None:
    assert peer_key({"type": "http", "headers": [], "client": (peer, 0) if peer else None}) == key


def test_client_key_is_the_peer_and_the_origin_decision_never_the_raw_header() -> None:
    assert client_key(scope(), "-") == "10.0.0.1 -"
    assert client_key(scope(origin="http://Evil.example:1234"), "self") == "10.0.0.1 self"
    assert client_key(scope(), None) == "10.0.0.1 foreign"


async def test_a_budget_grants_the_burst_then_refuses_with_a_retry_after() -> None:
    budget = ClientBudget(rate=10.0, burst=50)
    assert [await budget.take("a", 20) for _ in range(3)] == [None, None, 2]
    assert await budget.take("b", 20) is None  # another client has its own budget
    assert await ClientBudget(rate=1.0, burst=5).take("c", 100) is None  # a batch over the burst costs the burst
    # ... and waits what the whole burst takes to refill.
    over = ClientBudget(rate=10.0, burst=100)
    assert [await over.take("d", 500), await over.take("d", 500)] == [None, 10]


async def test_the_in_process_budget_store_does_not_start_a_thread_on_every_hit() -> None:
    # limits' own memory storage starts a new 10 ms timer thread on a hit whenever the last one has ended.
    budget = ClientBudget(rate=1e9, burst=10**9)
    timers = set()
    for _ in range(10):
        assert await budget.take("a", 20) is None
        timers.add(budget._local.storage.timer)  # type: ignore[union-attr]
        await anyio.sleep(0.03)
    assert len(timers) <= 2  # the one made with the store, and at most one sweep a second


async def test_processes_sharing_a_redis_queue_share_each_clients_budget(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        one, two = (ClientBudget(rate=10.0, burst=50, redis_url=server.url) for _ in range(2))
        try:
            assert [await one.take("a", 20), await two.take("a", 20), await one.take("a", 20)] == [None, None, 2]
            assert await two.take("b", 20) is None
        finally:
            await one.aclose()
            await two.aclose()
    finally:
        server.stop()


async def test_a_budget_store_that_fails_lets_events_pass_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    budget = ClientBudget(rate=10.0, burst=50, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    try:
        taken = [await budget.take("a", 50) for _ in range(3)]
    finally:
        await budget.aclose()
    assert taken == [None, None, None]
    # This test's own lines: a line another thread logs meanwhile is not this budget's doing.
    assert [r.getMessage() for r in caplog.records if r.thread == threading.get_ident()] == [
        "client budgets unavailable (ConnectionError); events pass unmetered"
    ]


@contextlib.asynccontextmanager
async def budget_and_queue(tmp_path: Path, max_events: int) -> AsyncIterator[tuple[ClientBudget, RedisQueue]]:
    """A shared budget (10 a second, 50 at once) and a Redis queue on one real redis-server."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    budget = ClientBudget(rate=10.0, burst=50, redis_url=server.url)
    queue = RedisQueue(server.url, max_events=max_events, max_bytes=100_000, max_age_s=3600.0)
    await queue.open()
    try:
        yield budget, queue
    finally:
        await queue.close()
        await budget.aclose()
        server.stop()


async def test_the_redis_queues_put_and_limits_spend_one_budget(tmp_path: Path) -> None:
    async with budget_and_queue(tmp_path, max_events=100) as (budget, queue):

        async def put(client: str, n: int) -> bool:
            charge = budget.shared_charge(client, n)
            assert charge is not None and charge.cost == n
            return await queue.put_charged("console", [opaque({"event_id": f"e{i}"}) for i in range(n)], charge)

        # 20 in the put, 20 through limits, then 20 more either way is over the 50 of the burst.
        assert [await put("a", 20), await budget.take("a", 20), await put("a", 20)] == [True, None, False]
        assert await budget.take("a", 20) == 2
        assert [await budget.take("b", 40), await put("b", 10), await put("b", 1)] == [None, True, False]
        stats = queue.stats()
        assert (stats.accepted, stats.spooled) == (30, 30)  # what went over the budget was not kept
        assert budget.shared_charge("a", 0) is None
        assert ClientBudget(rate=10.0, burst=50).shared_charge("a", 20) is None  # in this process: limits only


async def test_a_full_redis_queue_refuses_after_the_budget_was_taken(tmp_path: Path) -> None:
    async with budget_and_queue(tmp_path, max_events=10) as (budget, queue):
        charge = budget.shared_charge("a", 30)
        assert charge is not None
        with pytest.raises(SinkRefused) as refused:
            await queue.put_charged("console", [opaque({"event_id": f"e{i}"}) for i in range(30)], charge)
        assert (refused.value.status, refused.value.label) == (503, "spool_full")
        assert await budget.take("a", 30) == 3  # the refused batch was work too, as when limits takes it first
