"""How many events one local client gets accepted against its allowance, plain and with each evasion the third
review used (issue 19): rotating X-Forwarded-For, rotating the port in Host and Origin, rotating the source address
within 127.0.0.0/8.

Each scenario runs against a fresh `console-proxy serve` (local mode, the default budgets: a burst of 1,000 events,
then 100 a second) started with this interpreter, and posts --batches batches of 100 events as fast as one client
can. One client's allowance over the run is burst + rate x elapsed seconds; the report gives the events accepted and
their ratio to it. Run it with another checkout's package first on the path to measure that one:

    .venv/bin/python bench/budget_evasion.py [--batches 300]
    cd /tmp && PYTHONPATH=/path/to/other/checkout /path/to/.venv/bin/python /path/to/bench/budget_evasion.py
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

BURST, RATE = 1000, 100.0
EVENTS = [{"type": "Data/SET_TABLE", "route": "/console/data"}] * 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve() -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory() as state:
        args = [sys.executable, "-m", "console_proxy", "serve", "--port", str(port), "--state-dir", state]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("console-proxy serve did not start")
                time.sleep(0.05)
            yield base
        finally:
            proc.terminate()
            proc.wait(20)


Scenario = Callable[[int], tuple[dict[str, str], str]]  # batch number -> (headers, source address)

SCENARIOS: dict[str, Scenario] = {
    "one client, nothing rotated": lambda i: ({}, "127.0.0.1"),
    "X-Forwarded-For rotated": lambda i: ({"x-forwarded-for": f"10.{i // 250}.{i % 250}.1"}, "127.0.0.1"),
    "port in Host and Origin rotated": lambda i: (
        {"host": f"127.0.0.1:{20000 + i}", "origin": f"http://127.0.0.1:{20000 + i}"},
        "127.0.0.1",
    ),
    "source address in 127.0.0.0/8 rotated": lambda i: ({}, f"127.0.{i // 250}.{2 + i % 250}"),
}


def run(base: str, scenario: Scenario, batches: int) -> tuple[int, float]:
    clients: dict[str, httpx.Client] = {}
    accepted = 0
    started = time.monotonic()
    try:
        for i in range(batches):
            headers, source = scenario(i)
            if source not in clients:
                clients[source] = httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10)
            response = clients[source].post(base + "/_telemetry/v1/events", json=EVENTS, headers=headers)
            if response.status_code == 202:
                accepted += response.json()["accepted"]
    finally:
        for client in clients.values():
            client.close()
    return accepted, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=300)
    options = parser.parse_args()
    import console_proxy

    print(f"console-proxy from {Path(console_proxy.__file__).parent}; {options.batches} batches of 100 events")
    print("| scenario | accepted | seconds | one client's allowance | accepted / allowance |")
    print("|---|---|---|---|---|")
    for name, scenario in SCENARIOS.items():
        with serve() as base:
            accepted, seconds = run(base, scenario, options.batches)
        allowance = BURST + RATE * seconds
        print(f"| {name} | {accepted:,} | {seconds:.1f} | {allowance:,.0f} | {accepted / allowance:.2f} |")


if __name__ == "__main__":
    main()
