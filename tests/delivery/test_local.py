from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from console_proxy.asgi.recent import RecentEvents
from console_proxy.delivery.local import LocalFileSink
from console_proxy.delivery.sink import SinkRefused

from support.outbound import opaque


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_each_batch_is_one_line_with_a_fresh_batch_id(tmp_path: Path) -> None:
    sink = LocalFileSink(tmp_path / "state" / "events.jsonl")
    assert not sink.ready()
    await sink.start()
    assert sink.ready()
    await sink.put("console", [opaque({"event_type": "A/B"}), opaque({"event_type": "A/C"})])
    await sink.put("console_test", [opaque({"event_type": "A/D"})])
    await sink.aclose()
    assert not sink.ready()
    lines = [json.loads(line) for line in (tmp_path / "state" / "events.jsonl").read_text().splitlines()]
    assert [(line["topic"], line["data"]) for line in lines] == [
        ("console", [{"event_type": "A/B"}, {"event_type": "A/C"}]),
        ("console_test", [{"event_type": "A/D"}]),
    ]
    assert len({line["batch_id"] for line in lines}) == 2


@pytest.mark.anyio
async def test_a_closed_sink_refuses_with_503(tmp_path: Path) -> None:
    sink = LocalFileSink(tmp_path / "events.jsonl")
    with pytest.raises(SinkRefused) as refused:
        await sink.put("console", [opaque({"event_type": "A/B"})])
    assert (refused.value.status, refused.value.retry_after, refused.value.reason) == (
        503,
        1,
        "the local event file is closed",
    )


def test_recent_keeps_the_newest_hundred() -> None:
    recent = RecentEvents()
    recent.extend(opaque({"n": n}) for n in range(150))
    assert recent.snapshot() == [{"n": n} for n in range(50, 150)]


@pytest.mark.anyio
async def test_concurrent_puts_all_land_as_whole_lines(tmp_path: Path) -> None:
    sink = LocalFileSink(tmp_path / "events.jsonl")
    await sink.start()
    await asyncio.gather(*(sink.put("console", [opaque({"n": n, "pad": "x" * 5000})]) for n in range(50)))
    await sink.aclose()
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert sorted(line["data"][0]["n"] for line in lines) == list(range(50))


@pytest.mark.anyio
async def test_an_unwritable_file_is_refused_with_503(tmp_path: Path) -> None:
    sink = LocalFileSink(Path("/dev/full"))
    await sink.start()
    with pytest.raises(SinkRefused) as refused:
        await sink.put("console", [opaque({"event_type": "A/B"})])
    await sink.aclose()
    assert (refused.value.status, refused.value.reason) == (503, "the local event file is not writable")


@pytest.mark.anyio
async def test_a_full_file_refuses_with_503_and_keeps_what_it_has(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = LocalFileSink(path, max_bytes=400)
    await sink.start()
    await sink.put("console", [opaque({"n": 1, "pad": "x" * 100})])
    kept = path.read_bytes()
    with pytest.raises(SinkRefused) as refused:
        await sink.put("console", [opaque({"n": 2, "pad": "x" * 300})])
    assert (refused.value.status, refused.value.retry_after, refused.value.reason) == (
        503,
        60,
        "the local event file is full",
    )
    await sink.put("console", [opaque({"n": 3})])
    await sink.aclose()
    assert [json.loads(line)["data"] for line in path.read_text().splitlines()] == [
        [{"n": 1, "pad": "x" * 100}],
        [{"n": 3}],
    ]
    assert path.read_bytes().startswith(kept)


@pytest.mark.anyio
async def test_refusals_carry_their_metric_labels(tmp_path: Path) -> None:
    sink = LocalFileSink(tmp_path / "events.jsonl", max_bytes=100)
    await sink.start()
    with pytest.raises(SinkRefused) as full:
        await sink.put("console", [opaque({"pad": "x" * 200})])
    await sink.aclose()
    with pytest.raises(SinkRefused) as closed:
        await sink.put("console", [opaque({"n": 1})])
    assert (full.value.label, full.value.retry_after, closed.value.label) == (
        "local_file_full",
        60,
        "local_file_closed",
    )


def _lines(path: Path) -> list[object]:
    return [json.loads(line)["data"] for line in path.read_text().splitlines()]


@pytest.mark.anyio
async def test_a_torn_last_line_is_cut_off_on_open_and_kept_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "events.jsonl"
    whole = b'{"topic":"console","batch_id":"b1","data":[{"n":1}]}\n'
    path.write_bytes(whole + b'{"topic":"console","batch_id":"b2","da')
    sink = LocalFileSink(path)
    await sink.start()
    await sink.put("console", [opaque({"n": 3})])
    await sink.aclose()
    assert _lines(path) == [[{"n": 1}], [{"n": 3}]]
    [aside] = tmp_path.glob("events.jsonl.torn-*")
    assert aside.read_bytes() == b'{"topic":"console","batch_id":"b2","da'
    assert f"{path} ended in a torn line (a write cut short, never acknowledged); moved its 38 bytes to {aside}" in (
        caplog.text
    )


@pytest.mark.anyio
async def test_a_file_without_any_whole_line_is_cut_to_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"topic":"con')
    sink = LocalFileSink(path)
    await sink.start()
    await sink.aclose()
    assert path.read_bytes() == b""
    assert [p.read_bytes() for p in tmp_path.glob("events.jsonl.torn-*")] == [b'{"topic":"con']


@pytest.mark.anyio
async def test_a_deleted_file_is_noticed_and_a_new_one_started(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = LocalFileSink(path)
    await sink.start()
    await sink.put("console", [opaque({"n": 1})])
    path.unlink()
    await sink.put("console", [opaque({"n": 2})])
    await sink.aclose()
    assert _lines(path) == [[{"n": 2}]]


@pytest.mark.anyio
async def test_a_moved_file_keeps_its_lines_and_new_ones_go_to_the_path(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = LocalFileSink(path)
    await sink.start()
    await sink.put("console", [opaque({"n": 1})])
    path.rename(tmp_path / "events.jsonl.1")
    path.write_bytes(b"")  # rotated: a new empty file in its place
    await sink.put("console", [opaque({"n": 2})])
    await sink.aclose()
    assert (_lines(tmp_path / "events.jsonl.1"), _lines(path)) == ([[{"n": 1}]], [[{"n": 2}]])


@pytest.mark.anyio
async def test_a_full_file_moved_away_makes_room_at_once(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = LocalFileSink(path, max_bytes=200)
    await sink.start()
    await sink.put("console", [opaque({"pad": "x" * 100})])
    with pytest.raises(SinkRefused):
        await sink.put("console", [opaque({"pad": "x" * 100})])
    assert not sink.ready()
    path.rename(tmp_path / "full.jsonl")
    assert sink.ready()
    await sink.put("console", [opaque({"n": 2})])
    await sink.aclose()
    assert _lines(path) == [[{"n": 2}]]


@pytest.mark.anyio
async def test_ready_only_while_the_file_has_room_for_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = LocalFileSink(path, max_bytes=100 * 1024)
    await sink.start()
    assert sink.ready()
    await sink.put("console", [opaque({"pad": "x" * 40 * 1024})])
    assert sink.ready()  # room for another batch like it
    await sink.put("console", [opaque({"pad": "x" * 40 * 1024})])
    assert not sink.ready()  # 80 KiB of 100: a batch like the largest one would be refused
    path.unlink()
    assert sink.ready()
    await sink.aclose()
