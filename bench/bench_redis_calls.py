"""The Redis queue's calls one at a time: CPU per batch in this process and in Redis, for each kind of call.

    .venv/bin/python bench/bench_redis_calls.py [--batches 2000] [--events 20] [--repeat 3]

Runs the interpreter's own console_proxy (another checkout's `.venv/bin/python` measures that checkout) against
a fresh redis-server on loopback (appendonly yes, appendfsync everysec, as the ladder's). For each call: the
queue's put of a batch of `--events` distinct events; the client budget's take in shared mode (its own
`limits` script); the claim and the acknowledgement of one batch (with `--batch-max-events` as the batch size,
so each claim takes one accepted batch); where the version has it, the put with the budget taken in the same
script. CPU is process time here and utime + stime of redis-server
(/proc/PID/stat), per call; best of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from console_proxy.asgi.budgets import ClientBudget
from console_proxy.core.events import OutboundEvent, new_id
from console_proxy.delivery.redis.queue import RedisQueue

from support.outbound import opaque
from support.redis_server import RedisServer

TICKS = os.sysconf("SC_CLK_TCK")


def redis_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def batch(events: int) -> list[OutboundEvent]:
    route = "/data/default/schema/public/tables/t/browse"
    return [opaque({"event_id": new_id(), "event_type": "Console/PageView", "url": route}) for _ in range(events)]


async def one_run(server: RedisServer, batches: int, events: int) -> dict[str, tuple[float, float]]:
    assert server.proc is not None
    pid = server.proc.pid
    server.client().flushall()
    queue = RedisQueue(server.url, max_events=10**9, max_bytes=10**12, max_age_s=86_400.0)
    await queue.open()
    budget = ClientBudget(10**9, 10**9, redis_url=server.url)
    await budget.take("warm-up", 1)
    made = [batch(events) for _ in range(batches)]
    out: dict[str, tuple[float, float]] = {}

    async def measure(name: str, call: object) -> None:
        c0, r0 = time.process_time(), redis_cpu(pid)
        await call  # type: ignore[misc]
        c1, r1 = time.process_time(), redis_cpu(pid)
        out[name] = ((c1 - c0) / batches * 1e6, (r1 - r0) / batches * 1e6)

    async def puts() -> None:
        for b in made:
            await queue.put("console", b)

    async def takes() -> None:
        for i in range(batches):
            await budget.take(f"client-{i % 64}", events)

    async def forwards() -> None:
        for _ in range(batches):
            claimed = await queue.claim(events)
            assert claimed is not None and claimed.count == events
            await queue.ack(claimed.batch_id)

    async def charged_puts() -> None:
        for i, b in enumerate(made):
            charge = budget.shared_charge(f"client-{i % 64}", events)
            assert charge is not None
            assert await queue.put_charged("console", b, charge)

    await measure("put", puts())
    await measure("budget", takes())
    if hasattr(queue, "put_charged"):  # this version: the budget taken inside the put script
        await measure("put+budget in one script", charged_puts())
    await measure("claim+ack", forwards())
    await budget.aclose()
    await queue.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-redis-calls-") as tmp:
        server = RedisServer(Path(tmp) / "redis", appendfsync="everysec")
        server.start()
        try:
            runs = [asyncio.run(one_run(server, args.batches, args.events)) for _ in range(args.repeat)]
        finally:
            server.stop()
    where = str(Path(sys.modules["console_proxy"].__file__ or ".").parent)
    head = subprocess.run(
        ["git", "-C", where, "log", "-1", "--format=%h"], capture_output=True, text=True
    ).stdout.strip()
    print(f"console_proxy at {head}, {args.batches} batches of {args.events} events, best of {args.repeat}")
    print(f"{'call':<26} {'client us/batch':>16} {'redis us/batch':>15}")
    for name in runs[0]:
        client = min(run[name][0] for run in runs)
        redis = min(run[name][1] for run in runs)
        print(f"{name:<26} {client:>16.0f} {redis:>15.0f}")


if __name__ == "__main__":
    main()
