"""What a user runs, measured: `console-proxy serve` beside a bare endpoint and a raw ASGI app.

Contestants, each started afresh as its own process for every measurement:

  raw       a raw ASGI app that reads the body and answers a fixed 202 (the server's own floor)
  bare      a Starlette endpoint that parses the JSON and answers 202 (the floor the issue compares to)
  null      the proxy's app with a sink that keeps nothing (parsing, rules, outbound events, no disk)
  local     `console-proxy serve` in local mode (each batch appended to events.jsonl and fsynced)
  upstream  `console-proxy serve --upstream` (each batch committed to the SQLite spool, synchronous=FULL),
            forwarding to the test suite's collector (tests/collector.py) in a process of its own

raw, bare and null run under `python -m uvicorn` with the same settings `serve` uses (loopback, one
worker, no access log, no server header, loop and http "auto": uvloop and httptools when installed).

Throughput: wrk (one thread, --connections kept-alive connections) for --seconds on two workloads,
`repeated` (wrk_events.lua: the same 20 routes in every batch) and `fresh` (wrk_fresh.lua: 20
never-seen routes in every batch), after a 1 s warm-up; --rounds rounds, the contestants' order
rotated each round. Reports min/median/max req/s, events/s and each median's ratio to bare's.

Latency: openloop.py at a constant rate (half of each contestant's own median maximum, at most
MAX_OPEN_LOOP_RATE, then 50 req/s),
timed from each request's scheduled send, batches half repeated and half fresh; p50/p99/p99.9.

RSS: the peak (VmHWM) of the server process at the end of each run.

    .venv/bin/python bench/bench_serve.py [--rounds 3] [--seconds 5] [--connections 16] [--only local,bare]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
EVENTS = "/_telemetry/v1/events"
SERVER_UUID = "11111111-2222-4333-8444-555555555555"
CONTESTANTS = ("raw", "bare", "null", "local", "upstream")
WORKLOADS = {"repeated": BENCH / "wrk_events.lua", "fresh": BENCH / "wrk_fresh.lua"}
EVENTS_PER_BATCH = 20
# The open-loop generator is Python on the same two cores: past this rate it measures itself.
MAX_OPEN_LOOP_RATE = 4000.0
# Large enough that a bench run never fills the local file or the spool, nor spends the one client's budget (the
# budget is still taken for every batch: it is part of the path measured).
SERVE_FLAGS: tuple[str, ...] = ("--server-uuid", SERVER_UUID)
SERVE_FLAGS += ("--spool-max-bytes", str(1 << 36), "--spool-max-events", str(10**9))
SERVE_FLAGS += ("--client-rate", str(10**9), "--client-burst", str(10**9))
UVICORN_FLAGS: tuple[str, ...] = ("--host", "127.0.0.1", "--workers", "1", "--no-access-log", "--no-server-header")
UVICORN_FLAGS += ("--log-level", "warning", "--lifespan", "on")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HASURA_", "CONSOLE_PROXY_", "DO_NOT_TRACK"))}
    env["HOME"] = str(home)
    env["BENCH_STATE_DIR"] = str(home / "state")
    return env


@dataclasses.dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    collector: subprocess.Popen[bytes] | None = None

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def started(name: str, work: Path) -> Iterator[Running]:
    home = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
    (home / "state").mkdir()
    env = clean_env(home)
    port = free_port()
    log = open(home / "server.log", "wb")  # noqa: SIM115 -- closed in the finally below
    collector = None
    if name in ("raw", "bare", "null"):
        app = {"raw": "apps:raw", "bare": "apps:bare", "null": "apps:proxy_nodisk"}[name]
        argv = [sys.executable, "-m", "uvicorn", "--factory", "--app-dir", str(BENCH), app, "--port", str(port)]
        argv += UVICORN_FLAGS
    else:
        argv = [sys.executable, "-m", "console_proxy", "serve", "--port", str(port), "--state-dir", str(home / "state")]
        argv += SERVE_FLAGS
        if name == "upstream":
            cport = free_port()
            code = (
                f"import sys, time; sys.path.insert(0, {str(ROOT / 'tests')!r}); "
                f"from support.collector import Collector; c = Collector({cport}); c.up(); time.sleep(1e9)"
            )
            collector = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log, stderr=subprocess.STDOUT)
            argv += ["--upstream", f"http://127.0.0.1:{cport}/v1/collect"]
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    running = Running(name, proc, port, collector)
    try:
        wait_accepting(name, proc, port, home, check_answer=name != "raw")
        yield running
    finally:
        _stop(proc)
        if collector is not None:
            _stop(collector)
        log.close()


def wait_accepting(
    name: str, proc: subprocess.Popen[bytes], port: int, home: Path, *, check_answer: bool = True
) -> None:
    """Until the server on `port` answers one event with 202 (and, with `check_answer`, the proxy's count of it)."""
    body = {"events": [{"type": "Data/SET_TABLE", "route": "/console/data/db/schema/public/tables/t/browse"}]}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.TransportError):
            answer = httpx.post(f"http://127.0.0.1:{port}{EVENTS}", json=body, timeout=2)
            if answer.status_code == 202:
                if check_answer and answer.json() != {"accepted": 1, "dropped": 0}:
                    raise RuntimeError(f"{name}: unexpected answer {answer.text}")
                return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start; see {home / 'server.log'}")


def wrk(port: int, script: Path, seconds: float, connections: int) -> float:
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{seconds:g}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    match = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{out}")
    return float(match.group(1))


def openloop(port: int, rate: float, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH / "openloop.py"),
            "--port",
            str(port),
            "--rate",
            f"{rate:.1f}",
            "--seconds",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    if result["non_2xx"] or result["answered"] != result["sent"]:
        raise RuntimeError(f"open-loop run saw failures: {result}")
    return result


def rotated(names: list[str], k: int) -> list[str]:
    k %= len(names)
    return names[k:] + names[:k]


def spread(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--latency-seconds", type=float, default=5.0)
    parser.add_argument("--slow-seconds", type=float, default=10.0, help="duration of the 50 req/s run")
    parser.add_argument("--slow-rate", type=float, default=50.0)
    parser.add_argument("--only", default=",".join(CONTESTANTS))
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    for n in names:
        if n not in CONTESTANTS:
            parser.error(f"unknown contestant {n!r}")

    load = os.getloadavg()
    measured = subprocess.run(
        [sys.executable, "-c", "import console_proxy, os; print(os.path.dirname(console_proxy.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"console_proxy measured: {measured} (the servers' working directory: {os.getcwd()})")
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, load {load[0]:.2f}, "
        f"Python {sys.version.split()[0]}; wrk -t1 -c{args.connections} -d{args.seconds:g}s, "
        f"{args.rounds} rounds, order rotated",
        flush=True,
    )
    rps: dict[tuple[str, str], list[float]] = {(n, w): [] for n in names for w in WORKLOADS}
    rss: dict[str, list[float]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        for r in range(args.rounds):
            for name in rotated(names, r):
                with started(name, work) as running:
                    wrk(running.port, WORKLOADS["repeated"], 1, args.connections)  # warm-up
                    for workload, script in WORKLOADS.items():
                        value = wrk(running.port, script, args.seconds, args.connections)
                        rps[(name, workload)].append(value)
                        print(f"  round {r + 1} {name:9} {workload:9} {value:9.0f} req/s", flush=True)
                    rss[name].append(running.peak_rss_mib())

        latency: dict[str, dict[str, dict[str, float]]] = {}
        for name in rotated(names, args.rounds):
            half = min(MAX_OPEN_LOOP_RATE, statistics.median(rps[(name, "repeated")] + rps[(name, "fresh")]) / 2)
            with started(name, work) as running:
                wrk(running.port, WORKLOADS["repeated"], 1, args.connections)  # warm-up
                latency[name] = {
                    "half": openloop(running.port, half, args.latency_seconds),
                    "slow": openloop(running.port, args.slow_rate, args.slow_seconds),
                }
                rss[name].append(running.peak_rss_mib())
            print(f"  latency {name:9} done", flush=True)

    report(names, rps, rss, latency, args)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "rps": {f"{n}/{w}": v for (n, w), v in rps.items()},
                    "rss_mib": rss,
                    "latency": latency,
                    "load_at_start": load,
                },
                indent=1,
            )
        )


def report(
    names: list[str],
    rps: dict[tuple[str, str], list[float]],
    rss: dict[str, list[float]],
    latency: dict[str, dict[str, dict[str, float]]],
    args: argparse.Namespace,
) -> None:
    print()
    print("| contestant | workload | req/s min | req/s median | req/s max | events/s (median) | ratio to bare |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        for workload in WORKLOADS:
            lo, mid, hi = spread(rps[(name, workload)])
            bare = rps.get(("bare", workload))
            ratio = f"{mid / statistics.median(bare):.2f}" if bare else "-"
            events = "-" if name in ("raw", "bare") else f"{mid * EVENTS_PER_BATCH:,.0f}"
            print(f"| {name} | {workload} | {lo:,.0f} | {mid:,.0f} | {hi:,.0f} | {events} | {ratio} |")
    print()
    print("| contestant | rate (half max) | p50 ms | p99 ms | p99.9 ms | rate | p50 ms | p99 ms | p99.9 ms", end="")
    print(" | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        half, slow = latency[name]["half"], latency[name]["slow"]
        print(
            f"| {name} | {half['rate']:,.0f} | {half['p50_ms']:.1f} | {half['p99_ms']:.1f} | {half['p999_ms']:.1f} "
            f"| {slow['rate']:,.0f} | {slow['p50_ms']:.1f} | {slow['p99_ms']:.1f} | {slow['p999_ms']:.1f} "
            f"| {max(rss[name]):.0f} |"
        )
    print(
        f"\nhalf max: {args.latency_seconds:g} s; {args.slow_rate:g} req/s: {args.slow_seconds:g} s "
        f"(p99.9 of fewer than 1,000 samples is the maximum); batches half repeated, half fresh routes; "
        f"half max capped at {MAX_OPEN_LOOP_RATE:,.0f} req/s (the generator's own limit)"
    )


if __name__ == "__main__":
    main()
