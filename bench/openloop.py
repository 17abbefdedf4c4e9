"""Open-loop load: POST batches at a constant rate and time each answer from its *scheduled* send time.

A closed-loop client (wrk) sends the next request only when an answer came back, so a stalled server
is asked less and its stall hides (coordinated omission). Here request i is due at start + i/rate
whatever happened before; a request that waits for a free connection, or a generator that falls
behind, is charged to the latency. Prints one JSON object: the rate asked and reached, the count of
answers that were not 2xx, and latency percentiles in milliseconds.

    python bench/openloop.py --port 8000 --rate 500 --seconds 5 [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batches import mixed_body

EVENTS = "/_telemetry/v1/events"


class _Pool:
    """Kept-alive connections; a request due while all are busy waits for the first one free (and is charged)."""

    def __init__(self) -> None:
        self.idle: list[_Connection] = []
        self.waiting: collections.deque[tuple[bytes, float]] = collections.deque()
        self.results: list[tuple[float, int]] = []

    def submit(self, request: bytes, due: float) -> bool:
        """Send now on an idle connection (True), or queue it (False)."""
        while self.idle:
            conn = self.idle.pop()
            if not conn.lost:
                conn.send(request, due)
                return True
        self.waiting.append((request, due))
        return False

    def free(self, conn: _Connection) -> None:
        if self.waiting:
            conn.send(*self.waiting.popleft())
        else:
            self.idle.append(conn)


class _Connection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.WriteTransport | None = None
        self.buffer = bytearray()
        self.due = 0.0
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True

    def send(self, request: bytes, due: float) -> None:
        assert self.transport is not None
        self.due = due
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head.split(b" ", 2)[1])
        del self.buffer[: end + 4 + length]
        self.pool.results.append((time.perf_counter() - self.due, status))
        self.pool.free(self)


def _request(port: int, body: bytes) -> bytes:
    return (
        f"POST {EVENTS} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


async def run(port: int, rate: float, seconds: float, connections: int, seed: int) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    total = max(1, round(rate * seconds))
    requests = [_request(port, mixed_body(seed, i)) for i in range(total)]
    pool = _Pool()
    opened = 0

    async def open_one() -> None:
        nonlocal opened
        opened += 1
        _, conn = await loop.create_connection(lambda: _Connection(pool), "127.0.0.1", port)
        pool.free(conn)

    for _ in range(min(8, connections)):
        await open_one()
    start = time.perf_counter() + 0.05
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if not pool.submit(request, due) and opened < connections:
            await open_one()
    deadline = start + seconds + 30
    while len(pool.results) < total and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    latencies = sorted(latency * 1000 for latency, _ in pool.results)
    return {
        "rate": rate,
        "sent": total,
        "answered": len(pool.results),
        "reached_rate": len(pool.results) / elapsed,
        "non_2xx": sum(1 for _, status in pool.results if not 200 <= status < 300),
        "connections": opened,
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
        "p999_ms": _percentile(latencies, 0.999),
        "max_ms": latencies[-1] if latencies else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    runner: Callable[[Coroutine[Any, Any, dict[str, object]]], dict[str, object]]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    print(json.dumps(runner(run(args.port, args.rate, args.seconds, args.connections, args.seed))))


if __name__ == "__main__":
    main()
