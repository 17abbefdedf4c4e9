"""Every event stored exactly once when it matters: a collector killed with SIGKILL mid-load and restarted while
clients keep re-sending (same batch_id and Idempotency-Key, as a gate does), and two collectors taking the same
batches at the same moment on one PostgreSQL database."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.collect import (  # noqa: F401 -- fixtures
    batch,
    cli_event,
    console_event,
    count_rows,
    installation,
    pg_url,
    postgres,
    send_until_stored,
    start_collect,
    store_url,
)
from support.servers import free_port

BATCHES = 48
EVENTS_PER_BATCH = 40
OVERLAP = 10  # each batch repeats this many events of the one before it, as a replay of part of a spool would
SENDERS = 4


def load() -> tuple[list[dict[str, Any]], set[str]]:
    """BATCHES batches of several installations' events, each overlapping the previous one."""
    batches: list[dict[str, Any]] = []
    previous: list[dict[str, Any]] = []
    for n in range(BATCHES):
        fresh = [console_event(installation(n % 7)) for _ in range(EVENTS_PER_BATCH - OVERLAP)]
        topic, events = ("console", previous[-OVERLAP:] + fresh) if n % 3 else ("cli", [])
        if topic == "cli":
            events = [cli_event(installation(n % 5)) for _ in range(EVENTS_PER_BATCH)]
        batches.append(batch(topic, events))
        previous = events if topic == "console" else previous
    ids = {event["event_id"] for b in batches for event in b["data"]}
    return batches, ids


def test_a_collector_killed_mid_load_stores_every_event_once(tmp_path: Path, store_url: str) -> None:  # noqa: F811
    batches, ids = load()
    port = free_port()
    collector = start_collect(tmp_path, "--store", store_url, port=port)
    answers: dict[str, dict[str, int]] = {}
    attempts: list[int] = []
    replayed: list[str] = []
    lock = threading.Lock()

    def sender(mine: list[dict[str, Any]]) -> None:
        for envelope in mine:
            response, tries = send_until_stored(collector.base, envelope, deadline_s=60)
            with lock:
                answers[envelope["batch_id"]] = response.json()
                attempts.append(tries)
                if response.headers.get("idempotent-replayed") == "true":
                    replayed.append(envelope["batch_id"])

    threads = [threading.Thread(target=sender, args=(batches[i::SENDERS],)) for i in range(SENDERS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(answers) < BATCHES // 3 and time.monotonic() < deadline:
        time.sleep(0.005)  # polls the answers so far; the kill lands wherever the load is then
    assert collector.stop(signal.SIGKILL) == -signal.SIGKILL
    answered_before_kill = len(answers)
    restarted = start_collect(tmp_path, "--store", store_url, port=port, wait=False)
    try:
        for thread in threads:
            thread.join(90)
        assert not any(t.is_alive() for t in threads)
    finally:
        assert restarted.stop() == 0, restarted.output()
    accepted = sum(len(b["data"]) for b in batches)
    stored = sum(a["stored"] for a in answers.values())
    duplicates = sum(a["duplicates"] for a in answers.values())
    print(
        f"kill test ({store_url.split(':')[0]}): {accepted} events accepted in {BATCHES} batches, "
        f"{answered_before_kill} answered before the kill, {sum(attempts)} requests, "
        f"{len(replayed)} answers replayed by Idempotency-Key; "
        f"stored {stored}, duplicates {duplicates}, rejected {sum(a['rejected'] for a in answers.values())}"
    )
    assert len(answers) == BATCHES
    assert stored + duplicates == accepted
    assert stored == len(ids)
    assert count_rows(store_url, "console_events") + count_rows(store_url, "cli_events") == len(ids)
    assert count_rows(store_url, "bad_rows") == 0


def test_two_collectors_on_one_postgresql_store_each_event_once(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    batches, ids = load()
    first = start_collect(tmp_path, "--store", pg_url)
    second = start_collect(tmp_path, "--store", pg_url)
    answers: list[tuple[dict[str, Any], bool, dict[str, int], dict[str, int]]] = []
    try:
        with httpx.Client(timeout=30) as client:

            def both(envelope: dict[str, Any], keyed: bool) -> tuple[dict[str, int], dict[str, int]]:
                gate = threading.Barrier(2)
                got: dict[str, dict[str, int]] = {}

                def send(base: str) -> None:
                    headers = {"content-type": "application/json"}
                    if keyed:
                        headers["idempotency-key"] = envelope["batch_id"]
                    gate.wait(10)
                    response = client.post(base + "/v1/batches", json=envelope, headers=headers)
                    assert response.status_code == 200, response.text
                    got[base] = response.json()

                pair = [threading.Thread(target=send, args=(c.base,)) for c in (first, second)]
                for thread in pair:
                    thread.start()
                for thread in pair:
                    thread.join(30)
                return got[first.base], got[second.base]

            for n, envelope in enumerate(batches):
                keyed = n % 2 == 0
                answers.append((envelope, keyed, *both(envelope, keyed)))
    finally:
        assert first.stop() == 0, first.output()
        assert second.stop() == 0, second.output()
    for envelope, keyed, a, b in answers:
        n = len(envelope["data"])
        if keyed:  # one collector stored the batch; the other gave its answer again
            assert a == b
            assert a["stored"] + a["duplicates"] == n
        else:  # both stored what they could: each event by exactly one of them
            assert a["stored"] + b["stored"] + a["duplicates"] + b["duplicates"] == 2 * n
            assert a["stored"] + b["stored"] <= n
    stored = sum(a["stored"] + (0 if keyed else b["stored"]) for _, keyed, a, b in answers)
    assert stored == len(ids)
    assert count_rows(pg_url, "console_events") + count_rows(pg_url, "cli_events") == len(ids)


@pytest.mark.parametrize("resend", [1, 3])
def test_the_same_batch_again_and_again_adds_nothing(tmp_path: Path, store_url: str, resend: int) -> None:  # noqa: F811
    collector = start_collect(tmp_path, "--store", store_url)
    try:
        envelope = batch("console", [console_event(installation(1)) for _ in range(5)])
        with httpx.Client() as client:
            answers = [client.post(collector.base + "/v1/batches", json=envelope).json() for _ in range(1 + resend)]
    finally:
        assert collector.stop() == 0
    assert [(a["stored"], a["duplicates"]) for a in answers] == [(5, 0)] + [(0, 5)] * resend
    assert count_rows(store_url, "console_events") == 5
