"""`console-proxy dead-letters list|replay|purge` on a real spool file."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from console_proxy.cli.main import main
from console_proxy.core.events import OutboundEvent
from console_proxy.delivery.spool.spool import Spool

from support.outbound import opaque

pytestmark = pytest.mark.anyio

DEAD_AT = 1_795_000_000.0  # 2026-11-18T11:06:40Z


def event(i: int) -> OutboundEvent:
    return opaque({"event_id": str(uuid.UUID(int=i, version=4)), "event_type": f"A/E{i}", "url": "/data/SOURCE"})


def spool_at(state: Path) -> Spool:
    return Spool(state / "spool.db", max_events=1000, max_bytes=10**6, max_age_s=3600.0, clock=lambda: DEAD_AT)


async def dead_lettered(state: Path, *events: OutboundEvent, topic: str = "console") -> None:
    spool = spool_at(state)
    await spool.open()
    await spool.put(topic, list(events))
    batch = await spool.claim(100)
    assert batch is not None
    await spool.dead_letter(batch.batch_id, 400)
    await spool.close()


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["dead-letters", *args], env={"CONSOLE_PROXY_STATE_DIR": None}, input=input)


async def test_list_shows_each_dead_letter_and_writes_nothing(tmp_path: Path) -> None:
    await dead_lettered(tmp_path, event(1), event(2))
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run("list", "--state-dir", str(tmp_path))
    assert (result.exit_code, result.stdout) == (
        0,
        f"2026-11-18T11:06:40Z 400 {event(1)['event_id']} A/E1 /data/SOURCE\n"
        f"2026-11-18T11:06:40Z 400 {event(2)['event_id']} A/E2 /data/SOURCE\n",
    )
    assert result.stderr == f"2 dead letters in {tmp_path / 'spool.db'}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


async def test_replay_puts_them_back_in_the_queue_with_their_original_ids(tmp_path: Path) -> None:
    await dead_lettered(tmp_path, event(1), event(2))
    result = run("replay", "--state-dir", str(tmp_path))
    assert (result.exit_code, result.stdout) == (
        0,
        f"put back in the queue: 2 dead letters in {tmp_path / 'spool.db'}\n",
    )
    assert run("list", "--state-dir", str(tmp_path)).stdout == ""
    spool = spool_at(tmp_path)
    await spool.open()
    batch = await spool.claim(100)
    stats = spool.stats()
    await spool.close()
    assert batch is not None
    assert json.loads(batch.body)["data"] == [event(1), event(2)]
    assert (stats.accepted, stats.dead_lettered, stats.spooled, stats.forwarded) == (2, 0, 2, 0)


async def test_purge_asks_first_shows_with_dry_run_and_deletes_with_yes(tmp_path: Path) -> None:
    await dead_lettered(tmp_path, event(1))
    spool = tmp_path / "spool.db"
    dry = run("purge", "--state-dir", str(tmp_path), "--dry-run")
    assert (dry.exit_code, dry.stdout.split(" ", 1)[1], dry.stderr) == (
        0,
        f"400 {event(1)['event_id']} A/E1 /data/SOURCE\n",
        f"would purge 1 dead letter in {spool} (--dry-run: nothing changed)\n",
    )
    unasked = run("purge", "--state-dir", str(tmp_path))  # no terminal: stdin is empty
    assert (unasked.exit_code, unasked.stderr) == (
        1,
        f"Delete 1 dead letter in {spool} for good? [y/N]: \nnothing purged; give --yes to purge 1 dead letter"
        " without asking.\n",
    )
    refused = run("purge", "--state-dir", str(tmp_path), input="n\n")
    assert refused.exit_code == 1
    assert run("list", "--state-dir", str(tmp_path)).stderr == f"1 dead letter in {spool}\n"
    confirmed = run("purge", "--state-dir", str(tmp_path), input="y\n")
    assert (confirmed.exit_code, confirmed.stdout) == (0, f"purged: 1 dead letter in {spool}\n")
    await dead_lettered(tmp_path, event(1))
    result = run("purge", "--state-dir", str(tmp_path), "--yes")
    assert (result.exit_code, result.stdout) == (0, f"purged: 1 dead letter in {tmp_path / 'spool.db'}\n")
    assert run("list", "--state-dir", str(tmp_path)).stderr == f"0 dead letters in {tmp_path / 'spool.db'}\n"


async def test_replay_refuses_while_a_proxy_holds_the_spool(tmp_path: Path) -> None:
    await dead_lettered(tmp_path, event(1))
    spool = spool_at(tmp_path)
    await spool.open()
    try:
        result = run("replay", "--state-dir", str(tmp_path))
    finally:
        await spool.close()
    assert (result.exit_code, result.stderr) == (
        1,
        f"cannot change the spool {tmp_path / 'spool.db'}: another process holds this spool; "
        "stop console-proxy serve first.\n",
    )


def test_a_folder_without_a_spool_says_so_and_nothing_is_created(tmp_path: Path) -> None:
    expected = (
        f"no spool at {tmp_path / 'spool.db'}: nothing was ever queued there; is --state-dir the one serve uses?\n"
    )
    for command in ("list", "purge"):
        result = run(command, "--state-dir", str(tmp_path))
        assert (result.exit_code, result.stderr) == (1, expected)
    assert list(tmp_path.iterdir()) == []


async def test_replay_keeps_each_letters_topic(tmp_path: Path) -> None:
    await dead_lettered(tmp_path, event(1), topic="console_test")
    assert run("replay", "--state-dir", str(tmp_path)).exit_code == 0
    spool = spool_at(tmp_path)
    await spool.open()
    try:
        batch = await spool.claim(100)
        assert batch is not None and (batch.topic, json.loads(batch.body)["topic"]) == ("console_test", "console_test")
    finally:
        await spool.close()
