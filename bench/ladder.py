"""The ladder of issue 22 in one interleaved run: a bare endpoint, then every mode of `console-proxy serve`.

    cd /tmp && /path/to/checkout/.venv/bin/python /path/to/checkout/bench/ladder.py \
        [--before /path/to/other/checkout] [--rounds 5] [--seconds 4] [--connections 16] [--only bare,null,...]

Contestants, each a fresh process for every measurement, on loopback:

  bare      a Starlette endpoint that parses the JSON and answers 202 (`apps:bare`; uvicorn, uvloop, httptools)
  null      the proxy's app with a sink that keeps nothing (`apps:proxy_nodisk`)
  local     `console-proxy serve`, local mode (each batch appended to events.jsonl and fsynced before its 202)
  upstream  `console-proxy serve --upstream` (SQLite spool, synchronous=FULL) forwarding to a recording collector
            (tests/support/collector.py) in a process of its own
  redis     `console-proxy serve --queue redis://... --workers 1` on a fresh redis-server (appendonly yes,
            appendfsync everysec)

With `--before DIR`, every contestant but `bare` also runs from DIR's checkout (its own `.venv`), named
`before:NAME`: the ladder before and after from one command. `bare` is the same app for both; it runs with
this checkout's interpreter.

Throughput: wrk (one thread, --connections connections) posting `wrk_mixed.lua`'s batches: every request
distinct, 20 events of which half on routes never seen before; a 1 s warm-up, then --seconds. --rounds
rounds, the order rotated every round; a contestant's ratio to bare is the median of its per-round ratios
to that round's bare. Server CPU per request: the growth of utime + stime (/proc/PID/stat, the server's
process and its children; Redis's own separately) over the wrk run, over the requests wrk counted.
Latency: openloop.py (batches half repeated, half fresh) at 50 req/s and at half of the contestant's own
median maximum (at most 4,000 req/s); p50/p99. RSS: the server's peak (VmHWM), largest seen.
The load average is printed at the start and at the end (1-minute figure), and its mean over the run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

# The flags, ports and stopping of bench_serve.py, whose contestants these are too.
from bench_serve import (
    MAX_OPEN_LOOP_RATE,
    SERVE_FLAGS,
    UVICORN_FLAGS,
    _stop,
    free_port,
    wait_accepting,
)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CONTESTANTS = ("bare", "null", "local", "upstream", "redis")
MIXED = BENCH / "wrk_mixed.lua"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and of its living descendants, in seconds."""
    total = 0.0
    pending = [pid]
    while pending:
        p = pending.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    pending += [int(c) for c in (task / "children").read_text().split()]
    return total


def peak_rss_mib(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclasses.dataclass(frozen=True)
class Side:
    label: str  # "" (this checkout) or "before:"
    python: str
    root: Path


@dataclasses.dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    redis_pid: int | None


@contextlib.contextmanager
def started(side: Side, name: str, work: Path) -> Iterator[Running]:
    home = Path(tempfile.mkdtemp(prefix=f"{side.label.rstrip(':') or 'after'}-{name}-", dir=work))
    (home / "state").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HASURA_", "CONSOLE_PROXY_", "DO_NOT_TRACK"))}
    env["HOME"] = str(home)
    env["BENCH_STATE_DIR"] = str(home / "state")
    port = free_port()
    helpers: list[subprocess.Popen[bytes]] = []
    redis_pid = None
    with open(home / "server.log", "wb") as log:
        if name in ("bare", "null"):
            app = {"bare": "apps:bare", "null": "apps:proxy_nodisk"}[name]
            argv = [side.python, "-m", "uvicorn", "--factory", "--app-dir", str(BENCH), app, "--port", str(port)]
            argv += UVICORN_FLAGS
        else:
            argv = [side.python, "-m", "console_proxy", "serve", "--port", str(port)]
            argv += ["--state-dir", str(home / "state"), *SERVE_FLAGS]
            if name in ("upstream", "redis"):
                cport = free_port()
                code = (
                    f"import sys, time; sys.path.insert(0, {str(ROOT / 'tests')!r}); "
                    f"from support.collector import Collector; c = Collector({cport}); c.up(); time.sleep(1e9)"
                )
                helpers.append(subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log, stderr=log))
                argv += ["--upstream", f"http://127.0.0.1:{cport}/v1/collect"]
            if name == "redis":
                rport = free_port()
                rargs = ["redis-server", "--bind", "127.0.0.1", "--port", str(rport), "--dir", str(home)]
                rargs += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
                redis = subprocess.Popen(rargs, stdout=log, stderr=log)
                helpers.append(redis)
                redis_pid = redis.pid
                _wait_redis(rport)
                argv += ["--queue", f"redis://127.0.0.1:{rport}/0", "--workers", "1"]
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
        running = Running(side.label + name, proc, port, redis_pid)
        try:
            wait_accepting(running.name, running.proc, running.port, home)
            yield running
        finally:
            _stop(proc)
            for helper in reversed(helpers):
                _stop(helper)


def _wait_redis(port: int) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.02)
    raise RuntimeError("redis-server did not start")


def wrk(port: int, seconds: float, connections: int) -> tuple[float, int]:
    """(requests/s, requests) of one wrk run."""
    argv = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds:g}s", "-s", str(MIXED)]
    out = subprocess.run([*argv, f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rate = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.MULTILINE)
    count = re.search(r"^\s+(\d+) requests in", out, re.MULTILINE)
    if rate is None or count is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{out}")
    return float(rate.group(1)), int(count.group(1))


def openloop(port: int, rate: float, seconds: float) -> dict[str, float]:
    argv = [sys.executable, str(BENCH / "openloop.py"), "--port", str(port), "--rate", f"{rate:.1f}"]
    out = subprocess.run([*argv, "--seconds", str(seconds)], capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out)
    if result["non_2xx"] or result["answered"] != result["sent"]:
        raise RuntimeError(f"open-loop run saw failures: {result}")
    return result


class LoadSampler:
    """The 1-minute load average, sampled every 5 s while the run lasts."""

    def __init__(self) -> None:
        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(5):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])
        return self.samples


@dataclasses.dataclass
class Figures:
    rps: list[float] = dataclasses.field(default_factory=list)
    ratios: list[float] = dataclasses.field(default_factory=list)
    cpu_us: list[float] = dataclasses.field(default_factory=list)
    redis_cpu_us: list[float] = dataclasses.field(default_factory=list)
    rss: list[float] = dataclasses.field(default_factory=list)
    latency: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="another checkout (with its own .venv) to run beside this one")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--latency-seconds", type=float, default=5.0, help="duration of each open-loop run")
    parser.add_argument("--slow-rate", type=float, default=50.0)
    parser.add_argument("--only", default=",".join(CONTESTANTS))
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    for n in names:
        if n not in CONTESTANTS:
            parser.error(f"unknown contestant {n!r}")
    if "bare" not in names:
        names.insert(0, "bare")
    after = Side("", sys.executable, ROOT)
    entries: list[tuple[Side, str]] = [(after, n) for n in names]
    if args.before is not None:
        before = Side("before:", str(args.before.resolve() / ".venv" / "bin" / "python"), args.before.resolve())
        entries += [(before, n) for n in names if n != "bare"]
    label = {(s, n): s.label + n for s, n in entries}
    figures = {label[e]: Figures() for e in entries}

    sampler = LoadSampler()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    for side in {s for s, _ in entries}:
        where = subprocess.run(
            [side.python, "-c", "import console_proxy, os; print(os.path.dirname(console_proxy.__file__))"],
            capture_output=True,
            text=True,
            check=True,
            cwd="/",
        ).stdout.strip()
        commit = subprocess.run(
            ["git", "-C", str(side.root), "log", "-1", "--format=%h %s"], capture_output=True, text=True
        ).stdout.strip()
        print(f"  {side.label or 'after:'} {where} ({commit})")
    print(
        f"wrk -t1 -c{args.connections} -d{args.seconds:g}s wrk_mixed.lua, {args.rounds} rounds, order rotated",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="bench-ladder-") as tmp:
        work = Path(tmp)
        for r in range(args.rounds):
            k = r % len(entries)
            round_rps: dict[str, float] = {}
            for side, name in entries[k:] + entries[:k]:
                key = label[(side, name)]
                with started(side, name, work) as running:
                    wrk(running.port, 1, args.connections)  # warm-up
                    cpu0 = cpu_seconds(running.proc.pid)
                    redis0 = cpu_seconds(running.redis_pid) if running.redis_pid else 0.0
                    rate, count = wrk(running.port, args.seconds, args.connections)
                    cpu1 = cpu_seconds(running.proc.pid)
                    redis1 = cpu_seconds(running.redis_pid) if running.redis_pid else 0.0
                    f = figures[key]
                    f.rps.append(rate)
                    f.cpu_us.append((cpu1 - cpu0) / count * 1e6)
                    if running.redis_pid:
                        f.redis_cpu_us.append((redis1 - redis0) / count * 1e6)
                    f.rss.append(peak_rss_mib(running.proc.pid))
                    round_rps[key] = rate
                print(f"  round {r + 1} {key:16} {rate:8.0f} req/s {f.cpu_us[-1]:6.0f} us CPU/request", flush=True)
            for key, rate in round_rps.items():
                figures[key].ratios.append(rate / round_rps["bare"])

        if not args.no_latency:
            for side, name in entries:
                key = label[(side, name)]
                f = figures[key]
                half = min(MAX_OPEN_LOOP_RATE, statistics.median(f.rps) / 2)
                with started(side, name, work) as running:
                    wrk(running.port, 1, args.connections)  # warm-up
                    f.latency["slow"] = openloop(running.port, args.slow_rate, args.latency_seconds)
                    f.latency["half"] = openloop(running.port, half, args.latency_seconds)
                    f.rss.append(peak_rss_mib(running.proc.pid))
                print(f"  latency {key:16} done", flush=True)

    loads = sampler.stop()
    report(entries, label, figures, args)
    print(
        f"\nload average (1 min) over the run: start {loads[0]:.2f}, end {loads[-1]:.2f}, "
        f"mean {statistics.mean(loads):.2f}, max {max(loads):.2f} ({len(loads)} samples, every 5 s)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps({k: dataclasses.asdict(v) for k, v in figures.items()} | {"load": loads}))


def report(
    entries: list[tuple[Side, str]],
    label: dict[tuple[Side, str], str],
    figures: dict[str, Figures],
    args: argparse.Namespace,
) -> None:
    print()
    print("| contestant | req/s (median) | ratio to bare (median of rounds) | server CPU us/request | ", end="")
    print(f"p50 / p99 ms at {args.slow_rate:g} req/s | half max: rate, p50 / p99 ms | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for entry in entries:
        key = label[entry]
        f = figures[key]
        cpu = f"{statistics.median(f.cpu_us):.0f}"
        if f.redis_cpu_us:
            cpu += f" + {statistics.median(f.redis_cpu_us):.0f} Redis"
        slow, half = f.latency.get("slow"), f.latency.get("half")
        slow_s = f"{slow['p50_ms']:.1f} / {slow['p99_ms']:.1f}" if slow else "-"
        half_s = f"{half['rate']:,.0f}: {half['p50_ms']:.1f} / {half['p99_ms']:.1f}" if half else "-"
        print(
            f"| {key} | {statistics.median(f.rps):,.0f} | {statistics.median(f.ratios):.2f} "
            f"({min(f.ratios):.2f}-{max(f.ratios):.2f}) | {cpu} | {slow_s} | {half_s} | {max(f.rss):.0f} |"
        )


if __name__ == "__main__":
    main()
