"""A large streamed response from Hasura, directly and through the gate in reverse-proxy mode: bytes, time, the
time to the first byte, and the gate's peak RSS.

The Hasura stand-in of the tests (tests/support/hasura_standin.py, `/standin/stream`) runs under uvicorn in a
process of its own; the gate is `console-proxy serve --hasura-url` as a user runs it. The client reads the raw
bytes (no decoding) with httpx, the two paths alternated, --rounds times. Prints one JSON object.

    .venv/bin/python bench/bench_dropin.py [--mb 50] [--rounds 5] [--length]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.servers import free_port, spawn, start_serve, stop_process

STANDIN = (
    "import sys, uvicorn; sys.path.insert(0, {tests!r}); from support.hasura_standin import StandIn, app; "
    "uvicorn.run(app(StandIn()), host='127.0.0.1', port={port}, log_level='warning', access_log=False)"
)


def fetch(url: str) -> tuple[int, float, float]:
    """(bytes, seconds to the first byte, seconds in all) of one GET, reading the raw body."""
    started = time.perf_counter()
    first = 0.0
    size = 0
    with httpx.stream("GET", url, timeout=None) as answer:
        answer.raise_for_status()
        for chunk in answer.iter_raw():
            if not size:
                first = time.perf_counter() - started
            size += len(chunk)
    return size, first, time.perf_counter() - started


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--length", action="store_true", help="Hasura sends a Content-Length (else chunked)")
    options = parser.parse_args()
    size = options.mb * 1024 * 1024
    query = f"/standin/stream?bytes={size}" + ("&length=1" if options.length else "")
    tests = str(Path(__file__).resolve().parent.parent / "tests")
    port = free_port()
    standin = spawn([sys.executable, "-c", STANDIN.format(tests=tests, port=port)], stdout=subprocess.DEVNULL)
    hasura = f"http://127.0.0.1:{port}"
    try:
        wait_up(hasura + "/healthz")
        with tempfile.TemporaryDirectory() as tmp:
            gate = start_serve(
                Path(tmp),
                "--hasura-url",
                hasura,
                "--state-dir",
                str(Path(tmp) / "state"),
                "--server-uuid",
                "11111111-2222-4333-8444-555555555555",
                ready_path="/_telemetry/v1/healthz",
            )
            try:
                runs: dict[str, list[tuple[int, float, float]]] = {"direct": [], "gate": []}
                fetch(hasura + query)  # warm-up: connections, page cache, the stand-in's first run
                for _ in range(options.rounds):
                    runs["direct"].append(fetch(hasura + query))
                    runs["gate"].append(fetch(gate.base + query))
                rss = peak_rss_mib(gate.proc.pid)
            finally:
                gate.stop()
    finally:
        stop_process(standin)
    result: dict[str, object] = {
        "mb": options.mb,
        "rounds": options.rounds,
        "framing": "content-length" if options.length else "chunked",
        "load": round(os.getloadavg()[0], 2),
    }
    for name, figures in runs.items():
        seconds = [s for _, _, s in figures]
        result[name] = {
            "bytes": sorted({b for b, _, _ in figures}),
            "seconds_median": round(statistics.median(seconds), 3),
            "seconds_min": round(min(seconds), 3),
            "seconds_max": round(max(seconds), 3),
            "mib_per_s_median": round(size / 1024 / 1024 / statistics.median(seconds), 1),
            "first_byte_ms_median": round(statistics.median(f for _, f, _ in figures) * 1000, 1),
        }
    result["gate_peak_rss_mib"] = round(rss, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
