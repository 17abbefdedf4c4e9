"""`console-proxy dead-letters list|replay|purge --queue redis://...` against a real redis-server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from console_proxy.cli.main import main
from console_proxy.delivery.redis.queue import RedisQueue

from support.outbound import opaque
from support.redis_server import RedisServer

pytestmark = pytest.mark.anyio


async def dead_letter_two(url: str) -> RedisQueue:
    queue = RedisQueue(url, max_events=100, max_bytes=100_000, max_age_s=3600.0)
    await queue.open()
    await queue.put("console", [opaque({"event_id": "e1", "event_type": "A/B", "url": "/x"})])
    await queue.put("console", [opaque({"event_id": "e2", "event_type": "C/D", "url": "/y"})])
    batch = await queue.claim(10)
    assert batch is not None
    assert await queue.dead_letter(batch.batch_id, 400) == 2
    return queue


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["dead-letters", *args], env={"HOME": str(tmp_path)})
    return result.exit_code, result.stdout, result.stderr


async def test_list_replay_and_purge_the_redis_queues_dead_letters(tmp_path: Path, redis_server: RedisServer) -> None:
    queue = await dead_letter_two(redis_server.url)
    where = f"the redis queue at {redis_server.url}"
    code, out, err = run(tmp_path, "list", "--queue", redis_server.url)
    assert (code, [line.split(" ", 1)[1] for line in out.splitlines()], err) == (
        0,
        ["400 e1 A/B /x", "400 e2 C/D /y"],
        f"2 dead letters in {where}\n",
    )
    assert run(tmp_path, "replay", "--queue", redis_server.url) == (
        0,
        f"put back in the queue: 2 dead letters in {where}\n",
        "",
    )
    stats = queue.stats()
    assert (stats.accepted, stats.spooled, stats.dead_lettered) == (2, 2, 0)
    batch = await queue.claim(10)
    assert batch is not None
    assert [e["event_id"] for e in json.loads(batch.body)["data"]] == ["e1", "e2"]
    await queue.dead_letter(batch.batch_id, 422)
    code, out, err = run(tmp_path, "purge", "--queue", redis_server.url, "--dry-run")
    assert (code, len(out.splitlines()), err) == (
        0,
        2,
        f"would purge 2 dead letters in {where} (--dry-run: nothing changed)\n",
    )
    assert run(tmp_path, "purge", "--queue", redis_server.url)[0] == 1  # asked, and nobody said yes
    assert run(tmp_path, "purge", "--queue", redis_server.url, "--yes") == (
        0,
        f"purged: 2 dead letters in {where}\n",
        "",
    )
    assert run(tmp_path, "list", "--queue", redis_server.url) == (0, "", f"0 dead letters in {where}\n")
    stats = queue.stats()
    assert stats.accepted == stats.forwarded + stats.spooled + stats.dead_lettered + stats.expired == 2
    await queue.close()


def test_a_redis_without_the_queue_says_so(tmp_path: Path, redis_server: RedisServer) -> None:
    assert run(tmp_path, "list", "--queue", redis_server.url) == (
        1,
        "",
        f"no queue in the redis queue at {redis_server.url}: nothing was ever queued there; is --queue right?\n",
    )
