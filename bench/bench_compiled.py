"""What the compiled form of the hot path buys over the pure one, phase by phase and for a whole batch in process.

Run from the project root, once both environments exist (`make install-test pytest-compiled` makes them):
  .venv/bin/python bench/bench_compiled.py [--rounds 5] [--batches 500] [--repeat 3] \
      [--pure .venv/bin/python] [--compiled .venv-compiled/bin/python] [--json out.json]

Each round runs one fresh worker process per form, in alternating order: `--pure` (the editable install, every
module its Python source) and `--compiled` (the wheel built by `make pytest-compiled`, the hook's modules C
extensions). Both time the same `--batches` console batches (bench/batches.py: 20 events, 10 routes seen before and
10 never seen), each phase the best of `--repeat` passes, with a fresh rules object (empty route cache) per pass:

  strict JSON      sources.base.strict_json of each body (orjson, checked against the standard library's rules)
  read batch       sources.console.parse_batch: UTF-8, strict JSON and reading the 20 events
  anonymize        RouteRules.anonymize of the batch's 20 routes (the cache hits the 10 seen routes, never the new)
  trie only        the same 20 routes without the route cache: prefix, percent-decoding, the trie walk, the query
  ids              core.events.new_ids(20)
  build events     sources.console.build_outbound of a read batch, its routes already cached (ids included)
  encode           core.events.encode_events of the 20 outbound events (what every sink stores)
  console source   sources.console.SOURCE.build + encode_events: the whole compiled part of a batch
  app in process   the proxy's ASGI app with a sink that keeps nothing (bench/apps.py proxy_nodisk), one POST per
                   batch driven in process: Starlette, the middleware and the runtime (all interpreted) included

Prints microseconds per batch for both forms (medians over the rounds) and pure/compiled, the median of each
round's ratio; the worker's first line says which console_proxy each form imported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message

ROOT = Path(__file__).resolve().parent.parent
PHASES = (
    "strict JSON",
    "read batch",
    "anonymize",
    "trie only",
    "ids",
    "build events",
    "encode",
    "console source",
    "app in process",
)


def timed(passes: int, batches: int, setup: Callable[[], Callable[[], object]]) -> float:
    """Microseconds per batch of the fastest of `passes` runs of what `setup()` returns (setup is not timed)."""
    best = float("inf")
    for _ in range(passes):
        run = setup()
        start = time.perf_counter_ns()
        run()
        best = min(best, (time.perf_counter_ns() - start) / 1000 / batches)
    return best


def worker(batches: int, passes: int, seed: int) -> dict[str, Any]:
    import batches as corpus

    from console_proxy import load_rules
    from console_proxy.core import events
    from console_proxy.core.events import Identity
    from console_proxy.core.settings import Settings
    from console_proxy.sources import base, console

    bodies = [corpus.mixed_body(seed, i) for i in range(batches)]
    texts = [body.decode() for body in bodies]
    parsed = [console.parse_batch(body) for body in bodies]
    routes = [[event.route for event in batch.events] for batch in parsed]
    identity = Identity(server_uuid="11111111-2222-4333-8444-555555555555", server_version="v2.40.0")
    now = datetime(2026, 12, 2, tzinfo=UTC)
    results: dict[str, float] = {}

    def loop(each: Callable[[int], object]) -> Callable[[], object]:
        return lambda: [each(i) for i in range(batches)]

    results["strict JSON"] = timed(passes, batches, lambda: loop(lambda i: base.strict_json(texts[i])))
    results["read batch"] = timed(passes, batches, lambda: loop(lambda i: console.parse_batch(bodies[i])))

    def anonymize(cached: bool) -> Callable[[], object]:
        rules = load_rules()
        one = rules.anonymize if cached else rules._anonymize
        return loop(lambda i: [one(route) for route in routes[i]])

    results["anonymize"] = timed(passes, batches, lambda: anonymize(True))
    results["trie only"] = timed(passes, batches, lambda: anonymize(False))
    results["ids"] = timed(passes, batches, lambda: loop(lambda i: events.new_ids(20)))

    def build_events() -> Callable[[], object]:
        rules = load_rules()
        for batch in routes:
            for route in batch:
                rules.anonymize(route)
        return loop(lambda i: console.build_outbound(parsed[i], rules, identity, mode="server", now=now))

    results["build events"] = timed(passes, batches, build_events)
    rules = load_rules()
    outbound = [console.build_outbound(batch, rules, identity, mode="server", now=now)[0] for batch in parsed]
    results["encode"] = timed(passes, batches, lambda: loop(lambda i: events.encode_events(outbound[i])))

    def console_source() -> Callable[[], object]:
        context = base.Context(settings=Settings(), rules=load_rules(), identity=identity, now=now)

        def each(i: int) -> object:
            built = console.SOURCE.build(bodies[i], context)
            return [events.encode_events(batch) for batch in built.batches.values()]

        return loop(each)

    results["console source"] = timed(passes, batches, console_source)
    results["app in process"] = min(asyncio.run(app_in_process(bodies)) for _ in range(passes))
    return {"console_proxy": console.__file__, "us_per_batch": results}


async def app_in_process(bodies: list[bytes]) -> float:
    """Microseconds per batch for the proxy's app with a discarding sink, its lifespan started first."""
    with tempfile.TemporaryDirectory() as state:
        os.environ["BENCH_STATE_DIR"] = state
        import apps

        app = apps.proxy_nodisk()
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        outbox: asyncio.Queue[Message] = asyncio.Queue()
        lifespan_state: dict[str, Any] = {}
        lifespan = asyncio.create_task(
            app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": lifespan_state}, inbox.get, outbox.put)
        )
        await inbox.put({"type": "lifespan.startup"})
        started = await outbox.get()
        assert started["type"] == "lifespan.startup.complete", started
        try:
            start = time.perf_counter_ns()
            for body in bodies:
                status = await _post(app, body, lifespan_state)
                assert status == 202, status
            return (time.perf_counter_ns() - start) / 1000 / len(bodies)
        finally:
            await inbox.put({"type": "lifespan.shutdown"})
            await outbox.get()
            await lifespan


async def _post(app: ASGIApp, body: bytes, state: dict[str, Any]) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/_telemetry/v1/events",
        "raw_path": b"/_telemetry/v1/events",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:9695"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 9695),
        "state": dict(state),
    }
    messages: Iterator[Message] = iter([{"type": "http.request", "body": body, "more_body": False}])
    status = 0

    async def receive() -> Message:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def run_worker(python: str, batches: int, passes: int, seed: int) -> dict[str, Any]:
    args = [python, str(Path(__file__).resolve()), "--worker", "--batches", str(batches), "--repeat", str(passes)]
    done = subprocess.run([*args, "--seed", str(seed)], capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{python}: the worker failed\n{done.stdout}{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pure", default=str(ROOT / ".venv" / "bin" / "python"))
    parser.add_argument("--compiled", default=str(ROOT / ".venv-compiled" / "bin" / "python"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.batches, args.repeat, args.seed)))
        return

    forms = {"pure": args.pure, "compiled": args.compiled}
    runs: dict[str, list[dict[str, float]]] = {"pure": [], "compiled": []}
    load_before = os.getloadavg()[0]
    for round_ in range(args.rounds):
        order = ["pure", "compiled"] if round_ % 2 == 0 else ["compiled", "pure"]
        for form in order:
            result = run_worker(forms[form], args.batches, args.repeat, seed=round_ + 1)
            if round_ == 0:
                print(f"{form}: {result['console_proxy']}")
            runs[form].append(result["us_per_batch"])
    load_after = os.getloadavg()[0]

    print(f"\n{args.rounds} rounds of {args.batches} batches (20 events each), best of {args.repeat} passes a round;")
    print(f"load average {load_before:.2f} at start, {load_after:.2f} at end; Python {sys.version.split()[0]}\n")
    print(f"{'phase':<16} {'pure us/batch':>14} {'compiled us/batch':>18} {'pure/compiled':>14}")
    table = {}
    for phase in PHASES:
        pure = statistics.median(run[phase] for run in runs["pure"])
        compiled = statistics.median(run[phase] for run in runs["compiled"])
        ratio = statistics.median(p[phase] / c[phase] for p, c in zip(runs["pure"], runs["compiled"], strict=True))
        table[phase] = {"pure_us": pure, "compiled_us": compiled, "ratio": ratio}
        print(f"{phase:<16} {pure:>14.1f} {compiled:>18.1f} {ratio:>13.2f}x")
    if args.json is not None:
        document = {"rounds": runs, "table": table, "load": [load_before, load_after]}
        args.json.write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
