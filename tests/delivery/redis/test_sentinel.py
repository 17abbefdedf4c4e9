"""The Redis queue through Sentinel (`redis+sentinel://HOST:PORT/SERVICE/DB`), with a real sentinel process."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from console_proxy.asgi.budgets import ClientBudget
from console_proxy.delivery.queue_url import SentinelURL, display_queue_url, parse_sentinel_url
from console_proxy.delivery.redis.queue import RedisQueue

from support.outbound import opaque
from support.redis_server import RedisServer
from support.servers import free_port, spawn, stop_process


@pytest.fixture
def sentinel(tmp_path: Path, redis_server: RedisServer) -> Iterator[int]:
    """A sentinel (redis-server --sentinel) watching `redis_server` as service "main"; yields its port."""
    port = free_port()
    config = tmp_path / "sentinel.conf"  # sentinel rewrites its config file, so it gets its own
    config.write_text(f"port {port}\nbind 127.0.0.1\nsentinel monitor main 127.0.0.1 {redis_server.port} 1\n")
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with open(tmp_path / "sentinel.log", "wb") as log:
        proc = spawn([binary, str(config), "--sentinel"], stdout=log, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port, socket_connect_timeout=1)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "main"):
                    break
            except redis.exceptions.RedisError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "sentinel.log").read_text()
            time.sleep(0.05)
        yield port
    finally:
        client.close()
        stop_process(proc, timeout_s=10.0)


@pytest.mark.anyio
async def test_the_queue_works_through_a_sentinel(sentinel: int) -> None:
    queue = RedisQueue(f"redis+sentinel://127.0.0.1:{sentinel}/main/0", max_events=10, max_bytes=10_000, max_age_s=60)
    await queue.open()
    try:
        assert queue.writable
        await queue.put("console", [opaque({"event_id": "s1"})])
        batch = await queue.claim(10)
        assert batch is not None and json.loads(batch.body)["data"] == [{"event_id": "s1"}]
        assert await queue.ack(batch.batch_id) == 1
        assert queue.stats().forwarded == 1
    finally:
        await queue.close()


@pytest.mark.parametrize(
    ("url", "parsed", "shown"),
    [
        (
            "redis+sentinel://a.internal,b.internal:26380/main",
            SentinelURL((("a.internal", 26379), ("b.internal", 26380)), "main", 0, None, None, False),
            "redis+sentinel://a.internal:26379,b.internal:26380/main/0",
        ),
        (
            "rediss+sentinel://app:s%40cret@10.0.0.5:26379/queue/3",
            SentinelURL((("10.0.0.5", 26379),), "queue", 3, "app", "s@cret", True),
            "rediss+sentinel://10.0.0.5:26379/queue/3",
        ),
        ("redis://:secret@cache:6379/1", None, "redis://cache:6379/1"),
    ],
)
def test_sentinel_urls_are_read_and_shown_without_the_password(
    url: str, parsed: SentinelURL | None, shown: str
) -> None:
    assert (parse_sentinel_url(url), display_queue_url(url)) == (parsed, shown)


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://host:26379",
        "redis+sentinel://host:port/main",
        "redis+sentinel://h/main/x",
        "redis+sentinel:///main",
    ],
)
def test_malformed_sentinel_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_sentinel_url(url)


@pytest.mark.anyio
async def test_client_budgets_are_shared_through_the_sentinels_master(sentinel: int) -> None:
    url = f"redis+sentinel://127.0.0.1:{sentinel}/main/0"
    one, two = (ClientBudget(rate=10.0, burst=50, redis_url=url) for _ in range(2))
    try:
        assert await one.take("client", 30) is None
        assert await two.take("client", 30) == 3  # the same budget: 30 of 50 were spent through the other process
    finally:
        await one.aclose()
        await two.aclose()
