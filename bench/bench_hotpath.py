"""Where one console batch's in-process time goes, phase by phase (the null sink's path, no server, no disk).

    .venv/bin/python bench/bench_hotpath.py [--batches 3000] [--repeat 5]
    cd /tmp && PYTHONPATH=/path/to/bench /other/checkout/.venv/bin/python /path/to/bench/bench_hotpath.py

Batches of batches.py's mix (20 events, ten routes seen before, ten never seen; every batch distinct), each
phase timed on its own over --batches batches, best of --repeat, in microseconds per batch:

  strict JSON       sources.base.strict_json of the text
  reading events    sources.console.parse_batch, less the strict JSON
  anonymizing       rules.anonymize of the 20 routes (a fresh rules object each repeat: the cache starts empty)
  ids               events.new_ids(20)
  building events   sources.console.build_outbound, less anonymizing and ids
  budget            runtime.budget.take(client, 20)
  ingest            runtime.ingest (the phases above, metrics, the null sink's put)
  middleware        TelemetryMiddleware alone over the ASGI messages of a POST
  whole app         create_app's app (Starlette and its middleware stack) over the same messages
  Starlette stack   whole app less middleware
  glue              whole app less the Starlette stack and the named phases
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from apps import DiscardingSink
from batches import mixed_body

from console_proxy import Settings, create_app
from console_proxy.asgi.middleware import TelemetryMiddleware
from console_proxy.core.events import Identity, new_ids
from console_proxy.rules.route_rules import load_rules
from console_proxy.sources import console
from console_proxy.sources.base import strict_json

EVENTS = "/_telemetry/v1/events"


def best(repeat: int, run: Callable[[int], float]) -> float:
    return min(run(r) for r in range(repeat))


def timed(items: Sequence[Any], work: Callable[[Any], object]) -> float:
    start = time.perf_counter()
    for item in items:
        work(item)
    return (time.perf_counter() - start) / len(items) * 1e6


def scope_of(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": EVENTS,
        "raw_path": EVENTS.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"localhost:9691"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 9691),
    }


async def asgi_timed(app: Any, bodies: Sequence[bytes]) -> float:
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    start = time.perf_counter()
    for body in bodies:
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive(messages: list[dict[str, Any]] = messages) -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        await app(scope_of(body), receive, send)
    elapsed = (time.perf_counter() - start) / len(bodies) * 1e6
    if set(statuses) != {202}:
        raise RuntimeError(f"answers other than 202: {sorted(set(statuses))}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n: int = args.batches
    repeat: int = args.repeat
    seeds = iter(range(1, 10**6))

    def bodies() -> list[bytes]:
        seed = next(seeds)
        return [mixed_body(seed, i) for i in range(n)]

    identity = Identity(server_uuid="11111111-2222-4333-8444-555555555555", cli_uuid=None, server_version=None)
    now = datetime.now(UTC)
    phases: dict[str, float] = {}
    phases["strict JSON"] = best(repeat, lambda r: timed([b.decode() for b in bodies()], strict_json))
    parse = best(repeat, lambda r: timed(bodies(), console.parse_batch))
    phases["reading events"] = parse - phases["strict JSON"]

    def anonymizing(r: int) -> float:
        rules = load_rules()
        routes = [[e.route for e in console.parse_batch(b).events] for b in bodies()]
        return timed(routes, lambda rs: [rules.anonymize(x) for x in rs])

    phases["anonymizing"] = best(repeat, anonymizing)
    phases["ids"] = best(repeat, lambda r: timed(range(n), lambda _: new_ids(20)))

    def building(r: int) -> float:
        rules = load_rules()
        parsed = [console.parse_batch(b) for b in bodies()]
        return timed(parsed, lambda p: console.build_outbound(p, rules, identity, mode="local", now=now))

    phases["building events"] = best(repeat, building) - phases["anonymizing"] - phases["ids"]

    async def in_process() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                state_dir=Path(tmp), server_uuid=identity.server_uuid, client_rate=1e9, client_burst=10**9
            )
            app = create_app(settings, sink=DiscardingSink())
            out: dict[str, float] = {}
            telemetry = _find_telemetry(app)
            async with telemetry.running() as runtime:

                async def budget() -> float:
                    start = time.perf_counter()
                    for _ in range(n):
                        await runtime.budget.take("127.0.0.1", 20)
                    return (time.perf_counter() - start) / n * 1e6

                async def ingest() -> float:
                    items = bodies()
                    start = time.perf_counter()
                    for body in items:
                        await runtime.ingest(console.SOURCE, body, client="127.0.0.1")
                    return (time.perf_counter() - start) / n * 1e6

                async def bare_app(scope: Any, receive: Any, send: Any) -> None:
                    raise RuntimeError("not the events path")

                alone = TelemetryMiddleware(bare_app, runtime=runtime)
                for name, run in (
                    ("budget", budget),
                    ("ingest", ingest),
                    ("middleware", lambda: asgi_timed(alone, bodies())),
                    ("whole app", lambda: asgi_timed(app, bodies())),
                ):
                    out[name] = min([await run() for _ in range(repeat)])
            return out

    measured = _run(in_process())
    phases["budget"] = measured["budget"]
    phases["Starlette stack"] = measured["whole app"] - measured["middleware"]
    named = sum(phases.values())
    phases["glue"] = measured["whole app"] - named
    print(f"console_proxy: {Path(console.__file__).resolve().parents[1]}; {n} batches x {repeat}, best, us/batch")
    print("\n| phase | us per batch of 20 |\n|---|---|")
    for name, value in phases.items():
        print(f"| {name} | {value:.1f} |")
    print(f"| **whole app** | **{measured['whole app']:.1f}** |")
    print(f"\n(ingest alone {measured['ingest']:.1f}, middleware alone {measured['middleware']:.1f})")


def _find_telemetry(app: Any) -> TelemetryMiddleware:
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, TelemetryMiddleware):
        layer = getattr(layer, "app", None)
    if layer is None:
        raise RuntimeError("no TelemetryMiddleware in the app")
    return layer


def _run(coroutine: Coroutine[Any, Any, dict[str, float]]) -> dict[str, float]:
    try:
        import uvloop

        return uvloop.run(coroutine)
    except ImportError:
        return asyncio.run(coroutine)


if __name__ == "__main__":
    main()
