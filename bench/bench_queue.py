"""The Redis queue beside the SQLite spool, in one run: accepted events/s, delivered events/s from a backlog,
and fault runs (accepted / delivered / duplicated / lost).

Runs `console-proxy serve` subprocesses against Debian's redis-server and a collector on loopback. Usage:

    .venv/bin/python bench/bench_queue.py [--duration 10] [--backlog 200000] [--fsync always] [--skip ...]

- ingest: wrk (bench/wrk_events.lua, 20 events a request) against one process on SQLite, then 1, 2 and 4
  workers on Redis; accepted events/s is the /metrics accepted total's growth over the wrk run.
- backlog: N events put in the queue first, then serve starts; delivered events/s until it is empty.
- faults: kill -9 of a process holding a batch in flight, Redis restarted (AOF) under load, Redis down, the
  collector down while several processes write. Loss and duplicates are counted from the collector's record.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from console_proxy.delivery.redis.queue import RedisQueue
from console_proxy.delivery.spool.spool import SPOOL_FILE_NAME, Spool

from support.collector import Answer, Collector, read_metrics
from support.redis_server import RedisServer
from support.servers import ServeProcess, free_port, start_serve

ROOT = Path(__file__).resolve().parent.parent
SERVER_UUID = "11111111-2222-4333-8444-555555555555"
EVENTS = "/_telemetry/v1/events"
# Bounds and the one client's budget out of the way (the budget is still taken for every batch: on Redis too).
BIG: tuple[str, ...] = ("--spool-max-events", "100000000", "--spool-max-bytes", str(1 << 40))
BIG += ("--client-rate", str(10**9), "--client-burst", str(10**9))


# ---- a collector that only counts, in its own process, for the throughput runs -----------------------------


async def counting_collector(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def start_collector() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    code = (
        "import sys, uvicorn; sys.path.insert(0, sys.argv[2]); import bench_queue; "
        "uvicorn.run(bench_queue.counting_collector, host='127.0.0.1', port=int(sys.argv[1]), "
        "log_level='warning', access_log=False, lifespan='off')"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(port), str(ROOT / "bench")])
    url = f"http://127.0.0.1:{port}/collect"
    for _ in range(200):
        try:
            httpx.post(url, content=b"{}")
            break
        except httpx.TransportError:
            time.sleep(0.05)
    return proc, url


# ---- helpers -------------------------------------------------------------------------------------------------


def metrics(base: str) -> dict[str, float]:
    return read_metrics(httpx.get(base + "/metrics", timeout=10).text)


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def serve(work: Path, name: str, upstream: str, *args: str) -> ServeProcess:
    (work / name).mkdir(parents=True, exist_ok=True)
    return start_serve(
        work / name, "--upstream", upstream, "--state-dir", str(work / name / "state"), "--server-uuid", SERVER_UUID,
        *BIG, *args,
    )  # fmt: skip


def plural(workers: int) -> str:
    return f"{workers} worker{'s' if workers > 1 else ' '}"


def fresh_redis(work: Path, name: str, fsync: str) -> RedisServer:
    server = RedisServer(work / name, appendfsync=fsync)
    server.start()
    return server


# ---- ingest ----------------------------------------------------------------------------------------------------


def wrk(base: str, duration_s: int, connections: int) -> None:
    script = str(ROOT / "bench" / "wrk_events.lua")
    subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration_s}s", "-s", script, base],
        check=True,
        capture_output=True,
    )


def ingest_rate(served: ServeProcess, duration_s: int, connections: int) -> float:
    httpx.post(served.base + EVENTS, json={"events": [{"type": "A/B", "route": "/console"}]})
    before = metrics(served.base)["console_proxy_events_accepted_total"]
    started = time.monotonic()
    wrk(served.base, duration_s, connections)
    elapsed = time.monotonic() - started
    return (metrics(served.base)["console_proxy_events_accepted_total"] - before) / elapsed


def bench_ingest(work: Path, duration_s: int, connections: int, fsync: str) -> None:
    print(
        f"ingest: wrk -t 2 -c {connections} -d {duration_s}s, 20 events a request, forwarding to a counting collector"
    )
    collector, url = start_collector()
    try:
        served = serve(work, "ingest-sqlite", url)
        try:
            rate = ingest_rate(served, duration_s, connections)
        finally:
            served.stop()
        print(f"  sqlite spool, 1 process:        {rate:9.0f} accepted events/s")
        for workers in (1, 2, 4):
            redis = fresh_redis(work, f"ingest-redis-{workers}", fsync)
            try:
                served = serve(
                    work, f"ingest-redis-{workers}-serve", url, "--queue", redis.url, "--workers", str(workers)
                )
                try:
                    rate = ingest_rate(served, duration_s, connections)
                finally:
                    served.stop()
            finally:
                redis.stop()
            print(f"  redis (appendfsync {fsync}), {plural(workers)}: {rate:9.0f} accepted events/s")
    finally:
        collector.terminate()
        collector.wait()


# ---- backlog ---------------------------------------------------------------------------------------------------


def backlog_events(n: int) -> list[list[dict[str, Any]]]:
    now = "2026-01-01T00:00:00.000Z"
    event = {"event_type": "Data/SET_TABLE", "url": "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse",
             "console_mode": "server", "server_uuid": SERVER_UUID, "cli_uuid": None, "server_version": None,
             "timestamp": now, "data": None}  # fmt: skip
    return [[{"event_id": f"{i:08d}-{k}", **event} for k in range(100)] for i in range(n // 100)]


async def fill(put: Callable[..., Any], batches: list[list[dict[str, Any]]], topic: bool) -> None:
    for start in range(0, len(batches), 50):
        await asyncio.gather(*(put(*(("console",) if topic else ()), b) for b in batches[start : start + 50]))


async def fill_redis(url: str, n: int) -> None:
    queue = RedisQueue(url, max_events=1 << 40, max_bytes=1 << 50, max_age_s=86400.0)
    await queue.open()
    await fill(queue.put, backlog_events(n), topic=True)
    await queue.close()


async def fill_spool(path: Path, n: int) -> None:
    spool = Spool(path, max_events=1 << 40, max_bytes=1 << 50, max_age_s=86400.0)
    await spool.open()
    await fill(spool.put, backlog_events(n), topic=len(inspect.signature(spool.put).parameters) == 2)
    await spool.close()


def drain(served: ServeProcess, n: int) -> float:
    started = time.monotonic()
    ok = wait_until(lambda: metrics(served.base)["console_proxy_events_forwarded_total"] >= n, 600)
    elapsed = time.monotonic() - started
    return n / elapsed if ok else float("nan")


def bench_backlog(work: Path, n: int, fsync: str) -> None:
    print(f"backlog: {n} events in the queue, then serve starts; delivered events/s until it is empty (batches of 500)")
    collector, url = start_collector()
    try:
        (work / "backlog-sqlite" / "state").mkdir(parents=True)
        asyncio.run(fill_spool(work / "backlog-sqlite" / "state" / SPOOL_FILE_NAME, n))
        served = serve(work, "backlog-sqlite", url)
        try:
            print(f"  sqlite spool, 1 process:        {drain(served, n):9.0f} delivered events/s")
        finally:
            served.stop()
        for workers in (1, 2, 4):
            redis = fresh_redis(work, f"backlog-redis-{workers}", fsync)
            try:
                asyncio.run(fill_redis(redis.url, n))
                served = serve(
                    work, f"backlog-redis-{workers}-serve", url, "--queue", redis.url, "--workers", str(workers)
                )
                try:
                    rate = drain(served, n)
                finally:
                    served.stop()
            finally:
                redis.stop()
            print(f"  redis (appendfsync {fsync}), {plural(workers)}: {rate:9.0f} delivered events/s")
    finally:
        collector.terminate()
        collector.wait()


# ---- faults ----------------------------------------------------------------------------------------------------


class Poster(threading.Thread):
    """Posts 5-event batches of unique types to the bases in turn; remembers what got a 202 and every answer."""

    def __init__(self, tag: str, *bases: str) -> None:
        super().__init__(daemon=True)
        self.tag = tag
        self.bases = list(bases)
        self.accepted: list[str] = []
        self.answers: dict[int, int] = defaultdict(int)
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        with httpx.Client(timeout=5.0) as client:
            while not self.stop.is_set():
                types = [f"{self.tag}/E{n + k}" for k in range(5)]
                body = {"events": [{"type": t, "route": "/console/data/db/schema/s/tables/t/browse"} for t in types]}
                base = self.bases[(n // 5) % len(self.bases)]
                n += 5
                try:
                    status = client.post(base + EVENTS, json=body).status_code
                except httpx.TransportError:
                    status = 0
                self.answers[status] += 1
                if status == 202:
                    self.accepted.extend(types)
                else:
                    time.sleep(0.02)


def tally(name: str, collector: Collector, posters: list[Poster], extra: str = "") -> None:
    """Accepted, delivered, duplicated and lost events. The posters' made-up action names leave the gate as
    `UNKNOWN` (not on the rules' allow list), so events are told apart by the event_id the gate gave them: lost
    is how many accepted events have no event_id delivered (a batch Redis took but answered 503 for can hide as
    many losses as it holds; `taken by redis but answered 503` says how many such batches there were)."""
    accepted = [t for p in posters for t in p.accepted]
    copies: dict[str, int] = defaultdict(int)
    batch_of: dict[str, set[str]] = defaultdict(set)
    for request in collector.delivered():
        for event in request.body["data"]:
            copies[event["event_id"]] += 1
            batch_of[event["event_id"]].add(request.body["batch_id"])
    duplicated = sum(c - 1 for c in copies.values())
    lost = max(0, len(accepted) - len(copies))
    same_ids = all(len(b) == 1 for b in batch_of.values())
    answers: dict[int, int] = defaultdict(int)
    for p in posters:
        for status, count in p.answers.items():
            answers[status] += count
    print(
        f"  {name}: accepted {len(accepted)}, delivered {len(copies)}, duplicated {duplicated} "
        f"(re-sent with the same batch_id and event_id: {same_ids}), lost {lost}; "
        f"answers {dict(sorted(answers.items()))}{extra}"
    )


def settle(base: str) -> None:
    def done() -> bool:
        values = metrics(base)
        return values["console_proxy_spool_events"] == 0 and (
            values["console_proxy_events_forwarded_total"] == values["console_proxy_events_accepted_total"]
        )

    wait_until(done, 120)


def run_load(posters: list[Poster], seconds: float) -> None:
    for p in posters:
        p.start()
    time.sleep(seconds)


def stop_load(posters: list[Poster]) -> None:
    for p in posters:
        p.stop.set()
    for p in posters:
        p.join()


def bench_faults(work: Path, load_s: float) -> None:
    print(f"faults ({load_s:g} s of load each; lease 2 s; redis appendfsync always):")
    lease = ("--queue-lease-s", "2", "--batch-max-delay-s", "0.1", "--retry-cap-s", "1")

    # kill -9 of a process holding a batch in flight.
    redis = fresh_redis(work, "f-kill", "always")
    with Collector() as collector:
        collector.default = Answer(delay_s=0.02)
        a = serve(work, "f-kill-a", collector.url, "--queue", redis.url, *lease)
        b = serve(work, "f-kill-b", collector.url, "--queue", redis.url, *lease)
        posters = [Poster(f"K{i}", a.base, b.base) for i in range(4)]
        run_load(posters, load_s / 2)
        collector.answer(Answer(delay_s=60.0))
        seen = len(collector.requests)
        wait_until(lambda: len(collector.requests) > seen, 10)
        hung = collector.requests[seen].body["batch_id"]
        # redis-py types a reply as bytes | str | None whatever the client; this one answers bytes.
        owner = cast(bytes | None, redis.client().hget("{console-proxy}:batch:" + hung, "owner")) or b"?:0:?"
        victim, survivor = (a, b) if int(owner.decode().split(":")[1]) == a.proc.pid else (b, a)
        victim.stop(signal.SIGKILL)
        for p in posters:
            p.bases = [survivor.base]
        time.sleep(load_s / 2)
        stop_load(posters)
        settle(survivor.base)
        resent = [r.body["batch_id"] for r in collector.requests].count(hung)
        tally("kill -9 (2 processes)", collector, posters, f"; the batch in flight was sent {resent} times")
        survivor.stop()
    redis.stop()

    # Redis restarted (AOF) in the middle of the load.
    redis = fresh_redis(work, "f-restart", "always")
    with Collector() as collector:
        a = serve(work, "f-restart-a", collector.url, "--queue", redis.url, "--workers", "2", *lease)
        posters = [Poster(f"R{i}", a.base) for i in range(4)]
        run_load(posters, load_s / 2)
        redis.stop()
        time.sleep(1.0)
        redis.start()
        time.sleep(load_s / 2)
        stop_load(posters)
        settle(a.base)
        values = metrics(a.base)
        in_doubt = int(values["console_proxy_events_accepted_total"]) - len({t for p in posters for t in p.accepted})
        tally("redis restarted (2 workers)", collector, posters, f"; taken by redis but answered 503: {in_doubt}")
        a.stop()
    redis.stop()

    # Redis down for a while.
    redis = fresh_redis(work, "f-down", "always")
    with Collector() as collector:
        a = serve(work, "f-down-a", collector.url, "--queue", redis.url, "--workers", "2", *lease)
        posters = [Poster(f"D{i}", a.base) for i in range(4)]
        run_load(posters, load_s / 2)
        redis.stop()
        time.sleep(2.0)
        ready = httpx.get(a.base + "/readyz").status_code
        redis.start()
        time.sleep(load_s / 2)
        stop_load(posters)
        settle(a.base)
        tally("redis down 2 s (2 workers)", collector, posters, f"; /readyz while down: {ready}")
        a.stop()
    redis.stop()

    # The collector down while several processes write.
    redis = fresh_redis(work, "f-coll", "always")
    with Collector() as collector:
        a = serve(work, "f-coll-a", collector.url, "--queue", redis.url, "--workers", "2", *lease)
        b = serve(work, "f-coll-b", collector.url, "--queue", redis.url, *lease)
        posters = [Poster(f"C{i}", a.base, b.base) for i in range(4)]
        run_load(posters, load_s / 3)
        collector.down()
        time.sleep(load_s / 3)
        depth = metrics(a.base)["console_proxy_spool_events"]
        collector.up()
        time.sleep(load_s / 3)
        stop_load(posters)
        settle(a.base)
        tally(
            "collector down (3 processes)", collector, posters, f"; queue depth at the end of the outage: {depth:.0f}"
        )
        a.stop()
        b.stop()
    redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per ingest run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backlog", type=int, default=200_000)
    parser.add_argument("--fault-load-s", type=float, default=8.0)
    parser.add_argument("--fsync", default="always", choices=["always", "everysec"])
    parser.add_argument("--skip", action="append", default=[], choices=["ingest", "backlog", "faults"])
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp:
        work = Path(tmp)
        if "ingest" not in args.skip:
            bench_ingest(work, args.duration, args.connections, args.fsync)
        if "backlog" not in args.skip:
            bench_backlog(work, args.backlog, args.fsync)
        if "faults" not in args.skip:
            bench_faults(work, args.fault_load_s)
    print(json.dumps({"load_average_after": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
