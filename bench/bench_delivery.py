"""Delivery benchmark: drain rate from a full spool, a collector outage under load, the same with kill -9.

Runs `console-proxy serve --upstream ...` as a subprocess against a real collector on loopback (the
test suite's, from tests/support/collector.py) and prints the figures. Usage:

    .venv/bin/python bench/bench_delivery.py [--spool-events 200000] [--rate 200] [--batch 20]
                                             [--before-s 10] [--outage-s 60] [--after-s 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from console_proxy.core.events import ConsoleEvent
from console_proxy.delivery.spool.spool import SPOOL_FILE_NAME, Spool

from support.collector import Answer, Collector, free_port

EVENTS = "/_telemetry/v1/events"
SERVER_UUID = "11111111-2222-4333-8444-555555555555"
# Shorter than the defaults so a 60 s outage ends in seconds, not minutes of backoff; said in the output.
SERVE_FLAGS = ("--retry-cap-s", "5", "--batch-max-delay-s", "0.2", "--server-uuid", SERVER_UUID)


def serve(state: Path, upstream: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HASURA_", "CONSOLE_PROXY_", "DO_NOT_TRACK"))}
    env["HOME"] = str(state)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "console_proxy",
                "serve",
                "--port",
                str(port),
                "--state-dir",
                str(state),
                "--upstream",
                upstream,
                *SERVE_FLAGS,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        time.sleep(0.05)
    raise RuntimeError(f"console-proxy serve did not start; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def wait_until(condition: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def distinct_delivered(collector: Collector) -> int:
    return len({e["event_id"] for e in collector.delivered_events()})


# ---- (a) drain rate ----------------------------------------------------------------------------------------------


async def fill_spool(path: Path, n: int) -> None:
    spool = Spool(path, max_events=n, max_bytes=1 << 40, max_age_s=7 * 86400)
    await spool.open()
    try:
        for start in range(0, n, 500):
            events: list[ConsoleEvent] = [
                {
                    "event_id": str(uuid.uuid4()),
                    "event_type": f"Bench/Fill{start + k}",
                    "url": "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse",
                    "console_mode": "server",
                    "server_uuid": SERVER_UUID,
                    "cli_uuid": None,
                    "server_version": "v2.40.0",
                    "timestamp": "2026-11-27T19:00:00.123Z",
                    "data": None,
                }
                for k in range(min(500, n - start))
            ]
            await spool.put("console", events)
    finally:
        await spool.close()


def drain_rate(work: Path, n: int) -> None:
    state = work / "drain"
    state.mkdir()
    started = time.monotonic()
    asyncio.run(fill_spool(state / SPOOL_FILE_NAME, n))
    print(
        f"(a) filled a spool with {n} events in {time.monotonic() - started:.1f} s "
        f"({(state / SPOOL_FILE_NAME).stat().st_size / 1e6:.0f} MB)"
    )
    with Collector() as collector:
        port = free_port()
        started = time.monotonic()
        proc = serve(state, collector.url, port, work / "drain.log")
        try:
            done = wait_until(lambda: len(collector.delivered_events()) >= n, 600)
            total = time.monotonic() - started
            rss = peak_rss_kib(proc.pid)
        finally:
            stop(proc)
        got = distinct_delivered(collector)
        first, last = collector.requests[0], collector.requests[-1]
    # From the first request received to the last one answered: the forwarder's pace, start-up left out.
    span = last.at - first.at
    per_request = span / max(1, len(collector.requests) - 1)
    print(
        f"(a) delivered {got}/{n} events, {len(collector.requests)} requests of up to 500 events: "
        f"{got / (span + per_request):,.0f} events/s from the first request to the last; {total:.1f} s from "
        f"process start to all delivered; peak RSS {rss / 1024:.0f} MiB{'' if done else ' (TIMED OUT)'}"
    )


# ---- (b) and (c) outage under load -------------------------------------------------------------------------------


class Load(threading.Thread):
    """`rate` events/s in batches of `batch` uniquely named events; records which got a 202."""

    def __init__(self, port: int, rate: int, batch: int, tag: str) -> None:
        super().__init__(daemon=True)
        self.base = f"http://127.0.0.1:{port}"
        self.interval = batch / rate
        self.batch = batch
        self.tag = tag
        self.accepted: dict[str, float] = {}  # event type -> when its 202 came
        self.refused = 0
        self.unreachable = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        next_at = time.monotonic()
        with httpx.Client(timeout=5.0) as client:
            while not self.stopping.is_set():
                types = [f"Bench/{self.tag}{n + k}" for k in range(self.batch)]
                n += self.batch
                body = {
                    "events": [
                        {"type": t, "route": "/console/data/db/schema/public/tables/users/browse"} for t in types
                    ]
                }
                try:
                    response = client.post(self.base + EVENTS, json=body)
                    if response.status_code == 202:
                        now = time.monotonic()
                        self.accepted.update((t, now) for t in types)
                    else:
                        self.refused += 1
                except httpx.TransportError:
                    self.unreachable += 1
                next_at += self.interval
                time.sleep(max(0.0, next_at - time.monotonic()))


def outage(work: Path, name: str, args: argparse.Namespace, *, kill: bool) -> None:
    state = work / name
    state.mkdir()
    port = free_port()
    with Collector() as collector:
        proc = serve(state, collector.url, port, work / f"{name}.log")
        load = Load(port, args.rate, args.batch, name)
        load.start()
        time.sleep(args.before_s)
        collector.down()
        down_at = time.monotonic()
        kills = 0
        rss = 0
        if kill:
            time.sleep(args.outage_s / 2)
            rss = peak_rss_kib(proc.pid)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills = 1
            proc = serve(state, collector.url, port, work / f"{name}.log")
            time.sleep(max(0.0, args.outage_s - (time.monotonic() - down_at)))
        else:
            time.sleep(args.outage_s)
        seen = len(collector.requests)
        if kill:
            # Once more while the backlog drains, with the first batch received but not yet answered (the
            # collector holds its answer): that batch must come again, with the same batch_id and event_ids.
            collector.answer(Answer(delay_s=10.0))
        collector.up()
        up_at = time.monotonic()
        if kill:
            wait_until(lambda: len(collector.requests) > seen, 30)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            proc = serve(state, collector.url, port, work / f"{name}.log")
        time.sleep(max(0.0, args.after_s - (time.monotonic() - up_at)))
        load.stopping.set()
        load.join()
        drained = wait_until(lambda: {e["event_type"] for e in collector.delivered_events()} >= set(load.accepted), 300)
        first_seen: dict[str, float] = {}
        for request in collector.delivered():
            for e in request.body["data"]:
                first_seen.setdefault(e["event_type"], request.at)
        backlog = [t for t, at in load.accepted.items() if at < up_at]
        drained_s = max((first_seen.get(t, float("inf")) for t in backlog), default=up_at) - up_at
        rss = max(rss, peak_rss_kib(proc.pid))
        values = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        stop(proc)
        events = collector.delivered_events()
    delivered_types = {e["event_type"] for e in events}
    ids_by_type: dict[str, set[str]] = {}
    for e in events:
        ids_by_type.setdefault(e["event_type"], set()).add(e["event_id"])
    duplicated = len(events) - len({e["event_id"] for e in events})
    batch_ids = [r.body["batch_id"] for r in collector.delivered()]
    resent_batches = len(batch_ids) - len(set(batch_ids))
    lost = len(set(load.accepted) - delivered_types)
    same_ids = all(len(ids) == 1 for ids in ids_by_type.values())
    label = "(c)" if kill else "(b)"
    kills_text = "; kill -9 + restart of the proxy halfway through the outage and again while the backlog drains"
    print(
        f"{label} {args.rate} events/s in batches of {args.batch}; collector down {args.outage_s:.0f} s"
        f"{kills_text if kill else ''}:"
    )
    print(
        f"{label}   accepted (202) {len(load.accepted)}, delivered {len(delivered_types & set(load.accepted))}, "
        f"duplicated {duplicated} in {resent_batches} re-sent batches (each duplicate with its first "
        f"event_id: {same_ids}), lost {lost}"
    )
    print(
        f"{label}   batches refused {load.refused}, unreachable {load.unreachable} (the restart window), kills {kills}"
    )
    print(
        f"{label}   the {len(backlog)} events accepted before the collector returned were all delivered "
        f"{drained_s:.1f} s after it did{'' if drained else ' (TIMED OUT)'}; peak RSS (VmHWM) of the proxy "
        f"{rss / 1024:.0f} MiB"
    )
    invariant = [
        line
        for line in values.splitlines()
        if line.startswith(
            (
                "console_proxy_events_accepted_total",
                "console_proxy_events_forwarded_total",
                "console_proxy_spool_events ",
                "console_proxy_events_dead_lettered_total",
                "console_proxy_events_expired_total",
            )
        )
    ]
    print(f"{label}   /metrics at the end: {'; '.join(invariant)}")


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        yield Path(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spool-events", type=int, default=200_000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--before-s", type=float, default=10.0)
    parser.add_argument("--outage-s", type=float, default=60.0)
    parser.add_argument("--after-s", type=float, default=20.0)
    parser.add_argument("--only", choices=["a", "b", "c"], action="append")
    args = parser.parse_args()
    only = set(args.only or ["a", "b", "c"])
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; serve flags: {' '.join(SERVE_FLAGS)}")
    with workdir() as work:
        if "a" in only:
            drain_rate(work, args.spool_events)
        if "b" in only:
            outage(work, "outage", args, kill=False)
        if "c" in only:
            outage(work, "killed", args, kill=True)


if __name__ == "__main__":
    main()
