"""Storage faults under a real `console-proxy serve`: a full disk (a real small filesystem), side files of the spool
made unwritable, immutable, vanished or truncated, an unwritable local file. Each is a few log lines and 503s or a
clean stop, never a signal death; forwarding drains a full disk's spool; /readyz says what the next batch would get.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.collector import Collector, invariant_holds, read_metrics
from support.servers import ServeProcess, start_serve
from support.small_disk import SmallDisk, unwritable

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
EVENTS = "/_telemetry/v1/events"
FAST = ("--batch-max-events", "50", "--batch-max-delay-s", "0.05", "--retry-base-s", "0.05", "--retry-cap-s", "0.2")
ROUTE = "/console/data/default/schema/public/tables/t1/browse"


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def batch(tag: str, n: int = 10) -> list[dict[str, str]]:
    return [{"type": f"Fault/{tag.upper()}_{i}", "route": ROUTE} for i in range(n)]


def post(base: str, events: list[dict[str, str]]) -> int:
    return httpx.post(base + EVENTS, json=events, timeout=10).status_code


def metrics(base: str) -> dict[str, float]:
    return read_metrics(httpx.get(base + "/metrics", timeout=10).text)


def ready(base: str) -> int:
    return httpx.get(base + "/readyz", timeout=10).status_code


def upstream(tmp_path: Path, state: Path, collector: Collector, **options: Any) -> ServeProcess:
    args = ["--upstream", collector.url, "--server-uuid", SERVER_UUID, "--state-dir", str(state), *FAST]
    args += ["--client-burst", "100000"]
    return start_serve(tmp_path, *args, **options)


def test_a_full_disk_in_upstream_mode_keeps_draining(tmp_path: Path, collector: Collector) -> None:
    collector.down()
    with SmallDisk(tmp_path / "disk", "8m") as disk:
        served = upstream(tmp_path, disk.path / "state", collector, wrap=disk.command)
        disk.started(served.proc.pid)
        try:
            # Kept while the collector is down, then something else fills the disk: the spool's WAL holds all
            # of it, so neither a claim nor a delete can be written, nor a checkpoint grow the database file.
            codes = [post(served.base, batch(f"B{i}")) for i in range(98)]
            kept = 10 * codes.count(202)
            filler = disk.fill()
            assert disk.free_bytes() < 64 * 1024 and ready(served.base) == 503
            collector.up()  # the collector is back, the disk still full
            started = time.monotonic()
            wait_until(lambda: len({e["event_id"] for e in collector.delivered_events()}) >= kept, timeout_s=60)
            drained_s = time.monotonic() - started
            delivered = collector.delivered_events()
            assert disk.free_bytes() < 64 * 1024
            while_full = metrics(served.base)
            assert ready(served.base) == 503  # what was delivered is not out of the file yet: no room for a batch
            filler.unlink()
            wait_until(lambda: "the disk has room again" in served.output())
            wait_until(lambda: ready(served.base) == 200)
            assert post(served.base, batch("After")) == 202
            wait_until(lambda: len({e["event_id"] for e in collector.delivered_events()}) == kept + 10)
            after = metrics(served.base)
        finally:
            code = served.stop()
        forwarded, spooled = (
            while_full[f"console_proxy_{name}"] for name in ("events_forwarded_total", "spool_events")
        )
        print(
            f"full disk ({disk.how}): {kept} events kept, {len({e['event_id'] for e in delivered})} delivered in "
            f"{drained_s:.1f}s with the disk still full; while full, forwarded {forwarded:g}, spooled {spooled:g}"
        )
    assert code == 0 and codes == [202] * 98
    assert len(delivered) == kept and len({e["event_id"] for e in delivered}) == kept  # each once
    assert (forwarded, spooled) == (kept, 0)
    assert invariant_holds(while_full) and invariant_holds(after)
    assert after["console_proxy_events_forwarded_total"] == kept + 10
    output = served.output()
    assert output.count("the disk is full") == 1 and output.count("the disk has room again") == 1
    assert "Traceback" not in output


def spool_paths(state: Path) -> dict[str, Path]:
    return {suffix: state / f"spool.db{suffix}" for suffix in ("", "-wal", "-shm")}


@pytest.mark.parametrize("suffix", ["-shm", "-wal"])
def test_an_unwritable_side_file_is_a_503_and_a_line_not_a_signal(
    tmp_path: Path, collector: Collector, suffix: str
) -> None:
    state = tmp_path / "state"
    served = upstream(tmp_path, state, collector)
    try:
        assert post(served.base, batch("Before")) == 202
        collector.wait_for_events(10)
        with unwritable(spool_paths(state)[suffix]) as how:
            # Enough to grow the WAL past what -shm indexes now: where SQLite would have touched new pages of it.
            codes = {post(served.base, batch(f"During{i}", 100)) for i in range(60)}
            assert served.proc.poll() is None
            not_ready = ready(served.base)
        wait_until(lambda: ready(served.base) == 200)
        assert post(served.base, batch("After")) == 202
        # The forwarder may be backing off after the fault; on a busy machine that outlasts the default 10 s.
        delivered = collector.wait_for_events(20, timeout=60)
    finally:
        code = served.stop()
    assert (codes, not_ready, code) == ({503}, 503, 0), how
    assert sorted({e["event_type"].split("_")[0] for e in delivered}) == ["Fault/AFTER", "Fault/BEFORE"]
    output = served.output()
    assert output.count(f"its {suffix} file cannot be written") == 1
    assert "Traceback" not in output


@pytest.mark.parametrize("suffix", ["-shm", "-wal"])
def test_a_vanished_side_file_is_a_line_and_nothing_lost(tmp_path: Path, collector: Collector, suffix: str) -> None:
    state = tmp_path / "state"
    served = upstream(tmp_path, state, collector)
    try:
        collector.down()
        assert post(served.base, batch("Before")) == 202
        spool_paths(state)[suffix].unlink()
        codes = [post(served.base, batch(f"After{i}")) for i in range(3)]
        collector.up()
        delivered = collector.wait_for_events(40)
    finally:
        code = served.stop()
    assert (codes, code) == ([202] * 3, 0)
    assert len({e["event_id"] for e in delivered}) == 40
    with sqlite3.connect(spool_paths(state)[""]) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert served.output().count(f"its {suffix} file was deleted or replaced while open") == 1


def test_a_truncated_shm_file_is_a_line_and_nothing_lost(tmp_path: Path, collector: Collector) -> None:
    state = tmp_path / "state"
    served = upstream(tmp_path, state, collector)
    try:
        collector.down()
        assert post(served.base, batch("Before")) == 202
        os.truncate(spool_paths(state)["-shm"], 0)
        scrape = httpx.get(served.base + "/metrics").status_code
        codes = [post(served.base, batch(f"After{i}")) for i in range(3)]
        collector.up()
        delivered = collector.wait_for_events(40)
    finally:
        code = served.stop()
    assert (scrape, codes, code) == (200, [202] * 3, 0)
    assert len({e["event_id"] for e in delivered}) == 40
    assert served.output().count("-shm file shrank while open; its size restored") == 1


def local(tmp_path: Path, state: Path, *extra: str, **options: Any) -> ServeProcess:
    return start_serve(tmp_path, "--server-uuid", SERVER_UUID, "--state-dir", str(state), *extra, **options)


def test_readyz_in_local_mode_is_503_exactly_while_the_file_cannot_be_written(tmp_path: Path) -> None:
    state = tmp_path / "state"
    served = local(tmp_path, state)
    try:
        assert (post(served.base, batch("A")), ready(served.base)) == (202, 200)
        with unwritable(state / "events.jsonl"):
            refused, not_ready = post(served.base, batch("B")), ready(served.base)
        answers = (ready(served.base), post(served.base, batch("C")))
    finally:
        assert served.stop() == 0
    assert (refused, not_ready, answers) == (503, 503, (200, 202))
    lines = (state / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["data"][0]["event_type"] for line in lines] == ["Fault/A_0", "Fault/C_0"]


def test_readyz_in_local_mode_under_a_small_bound_is_ready_while_a_batch_fits(tmp_path: Path) -> None:
    state = tmp_path / "state"
    served = local(tmp_path, state, "--spool-max-bytes", "4000")
    try:
        answers = []
        for i in range(20):
            code = post(served.base, batch(f"S{i}", 2))
            answers.append((code, ready(served.base)))
            if code != 202:
                break
        (state / "events.jsonl").rename(state / "full.jsonl")
        moved = ready(served.base)
    finally:
        assert served.stop() == 0
    # Ready after each batch that left room for one more like it; not ready once one would not fit.
    *fitting, (last_code, last_ready) = answers
    assert fitting and all(code == 202 for code, _ in fitting) and fitting[0][1] == 200
    assert fitting[-1][1] == 503 and (last_code, last_ready, moved) == (503, 503, 200)
    assert [r for _, r in fitting[:-1]] == [200] * (len(fitting) - 1)


def test_readyz_in_local_mode_on_a_full_disk(tmp_path: Path) -> None:
    with SmallDisk(tmp_path / "disk", "2m") as disk:
        served = local(tmp_path, disk.path / "state", wrap=disk.command)
        disk.started(served.proc.pid)
        try:
            assert (post(served.base, batch("A")), ready(served.base)) == (202, 200)
            filler = disk.fill()
            full = (ready(served.base), post(served.base, batch("B")))
            filler.unlink()
            again = (ready(served.base), post(served.base, batch("C")))
        finally:
            code = served.stop()
    assert (full, again, code) == ((503, 503), (200, 202), 0)
    assert served.output().count("cannot write the local event file") == 1
