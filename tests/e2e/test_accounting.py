"""End-to-end accounting with real parts: `console-proxy serve` forwarding to a real `console-proxy collect` (DuckDB),
a token file on both sides, with the SQLite spool and with a real redis-server. After the collector is killed -9 and
restarted mid-load, and the gate killed -9 mid-delivery and restarted, every topic adds up exactly: accepted =
stored + duplicates + rejected + queued (+ dead letters), and the collector holds each accepted event once. A wrong
token: the collector answers 401, the gate keeps everything queued and says so; the right one delivers it all."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from console_proxy.cli.main import main

from support.collect import CollectProcess, count_rows, start_collect
from support.hasura_bodies import FLAT_PATH
from support.servers import ServeProcess, free_port, start_serve

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
TOKEN = "collector-token-0123456789abcdef"
FAST: tuple[str, ...] = ("--batch-max-events", "20", "--batch-max-delay-s", "0.05", "--retry-base-s", "0.01")
FAST += ("--retry-cap-s", "0.3", "--client-rate", "1000000", "--client-burst", "1000000", "--queue-lease-s", "1")
FAST += ("--shutdown-grace-s", "1", "--server-uuid", SERVER_UUID)
ROUTE = "/console/data/db1/schema/s1/tables/t1/browse"


def token_file(path: Path, token: str) -> Path:
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


class Setup:
    """One collector (DuckDB, a token file) and one gate (its token file, the spool or a Redis queue), restartable
    on the same ports, files and state."""

    def __init__(self, tmp: Path, queue: str | None) -> None:
        self.tmp = tmp
        self.store = f"duckdb:///{tmp / 'collector.duckdb'}"
        self.collector_port, self.gate_port = free_port(), free_port()
        self.collector_tokens = token_file(tmp / "collector-tokens", TOKEN)
        self.gate_token = token_file(tmp / "gate-token", TOKEN)
        self.queue = queue
        self.starts = 0
        self.collector: CollectProcess | None = None
        self.gate: ServeProcess | None = None

    def start_collector(self) -> CollectProcess:
        self.collector = start_collect(
            self.tmp, "--store", self.store, "--token-file", str(self.collector_tokens), port=self.collector_port
        )
        return self.collector

    def gate_args(self) -> list[str]:
        upstream = f"http://127.0.0.1:{self.collector_port}/v1/batches"
        args = ["--upstream", upstream, "--upstream-token-file", str(self.gate_token)]
        args += ["--state-dir", str(self.tmp / "state"), *FAST]
        return args + (["--queue", self.queue] if self.queue else [])

    def start_gate(self) -> ServeProcess:
        self.starts += 1
        home = self.tmp / f"gate-{self.starts}"  # serve.log of each start kept apart
        home.mkdir()
        self.gate = start_serve(home, *self.gate_args(), port=self.gate_port)
        assert self.gate.proc.poll() is None, self.gate.output()
        return self.gate

    def topics(self) -> dict[str, dict[str, int]]:
        assert self.gate is not None
        reading = httpx.get(self.gate.base + "/_telemetry/v1/status", timeout=5).json()["delivery"]["reading"]
        assert reading["readable"], reading
        return {row["topic"]: row for row in reading["topics"]}

    def stop(self) -> None:
        for process in (self.gate, self.collector):
            if process is not None and process.proc.poll() is None:
                process.stop()


@pytest.fixture(params=["spool", "redis"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    queue = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    made = Setup(tmp_path, queue)
    yield made
    made.stop()


class Poster(threading.Thread):
    """Posts console batches of 5 and CLI bodies to the gate until stopped; counts what was answered 202, by topic."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.accepted: Counter[str] = Counter()
        self.unanswered = 0  # posts with no answer (the gate down, or killed as it answered)
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                topic = "cli" if n % 4 == 0 else "console"
                try:
                    if topic == "cli":
                        response = client.post(self.base + "/v1/http", json=FLAT_PATH)
                    else:
                        body = {"events": [{"type": "Data/SET_TABLE", "route": ROUTE} for _ in range(5)]}
                        response = client.post(self.base + "/_telemetry/v1/events", json=body)
                except httpx.TransportError:
                    self.unanswered += 1
                    time.sleep(0.02)
                    continue
                if response.status_code == 202:
                    self.accepted[topic] += int(response.json()["accepted"])
                else:
                    time.sleep(0.02)

    def finish(self) -> None:
        self.stop.set()
        self.join(30)


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def delivered(setup: Setup) -> Callable[[], bool]:
    def check() -> bool:
        topics = setup.topics()
        return bool(topics) and all(row["queued"] == 0 for row in topics.values())

    return check


def status_text(setup: Setup) -> str:
    assert setup.gate is not None
    result = CliRunner().invoke(main, ["status", "--url", setup.gate.base])
    assert result.exit_code == 0, result.output
    return result.output


def test_accounting_adds_up_after_the_collector_and_the_gate_are_killed_mid_load(setup: Setup) -> None:
    setup.start_collector()
    gate = setup.start_gate()
    poster = Poster(gate.base)
    poster.start()
    try:
        wait_until(lambda: sum(row["stored"] for row in setup.topics().values()) >= 100)
        assert setup.collector is not None
        assert setup.collector.stop(signal.SIGKILL) == -signal.SIGKILL  # mid-load: batches in flight, retried
        wait_until(lambda: sum(row["queued"] for row in setup.topics().values()) >= 40)
        setup.start_collector()
        stored_then = sum(row["stored"] for row in setup.topics().values())
        wait_until(lambda: sum(row["stored"] for row in setup.topics().values()) >= stored_then + 100)
        assert setup.gate is not None
        assert setup.gate.stop(signal.SIGKILL) == -signal.SIGKILL  # mid-delivery: a batch claimed, maybe sent
        setup.start_gate()
        wait_until(lambda: sum(row["accepted"] for row in setup.topics().values()) >= stored_then + 300)
    finally:
        poster.finish()
    wait_until(delivered(setup))
    topics = setup.topics()
    report = status_text(setup)
    print(f"\n{'redis' if setup.queue else 'spool'}: {report}")
    for topic, row in topics.items():
        print(
            f"{topic}: accepted {row['accepted']}, stored {row['stored']}, duplicates {row['duplicates']}, "
            f"rejected {row['rejected']}, queued {row['queued']}, dead-lettered {row['dead_lettered']}"
        )
        assert row["accepted"] == row["stored"] + row["duplicates"] + row["rejected"] + row["queued"]
        assert (row["gap"], row["uncounted"], row["dead_lettered"], row["expired"], row["lost"]) == (0, 0, 0, 0, 0)
        # What a 202 answered is accepted; a post the gate took as it was killed may be accepted unanswered.
        assert row["accepted"] >= poster.accepted[topic]
    assert set(topics) == {"console", "cli"}
    assert "(adds up)" in report and "GAP" not in report
    setup.stop()
    # The collector holds each accepted event once: what it did not reject, and nothing else.
    for topic, table in (("console", "console_events"), ("cli", "cli_events")):
        assert count_rows(setup.store, table) == topics[topic]["accepted"] - topics[topic]["rejected"]
    logs = [log.read_text(errors="replace") for log in setup.tmp.glob("gate-*/serve.log")]
    assert len(logs) == 2 and not any(TOKEN in log for log in logs)


def test_a_wrong_token_keeps_everything_queued_and_the_right_one_delivers_it(setup: Setup) -> None:
    setup.start_collector()
    token_file(setup.gate_token, "a-wrong-token-0123456789abcdef")
    gate = setup.start_gate()
    with httpx.Client(timeout=5.0) as client:
        for _ in range(6):
            body = {"events": [{"type": "Data/SET_TABLE", "route": ROUTE} for _ in range(5)]}
            assert client.post(gate.base + "/_telemetry/v1/events", json=body).status_code == 202
        assert client.post(gate.base + "/v1/http", json=FLAT_PATH).status_code == 202
    wait_until(lambda: gate.output().count("UPSTREAM REFUSED THE GATE (401)") >= 2)
    topics = setup.topics()
    assert topics["console"]["accepted"] == topics["console"]["queued"] == 30
    assert topics["cli"]["accepted"] == topics["cli"]["queued"] == 1
    assert all(row["stored"] == row["dead_lettered"] == row["gap"] == 0 for row in topics.values())
    refused = status_text(setup)
    assert "30 queued" in refused and "(adds up)" in refused
    assert "a-wrong-token" not in gate.output() and TOKEN not in gate.output()
    assert gate.stop() == 0
    token_file(setup.gate_token, TOKEN)  # the operator's fix, and a restart
    setup.start_gate()
    wait_until(delivered(setup))
    topics = setup.topics()
    assert (topics["console"]["stored"], topics["cli"]["stored"]) == (30, 1)
    assert all(row["gap"] == 0 and row["dead_lettered"] == 0 for row in topics.values())
