"""The collector's answer, read strictly, and the arithmetic of the per-topic accounting."""

from __future__ import annotations

import json

import pytest

from console_proxy.core.accounting import Answer, TopicAccount, account_line, accounts, fates_of, parse_answer

BATCH = "3f1c2b3a-9d4e-4f5a-8b6c-000000000001"


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_the_collectors_answer_gives_its_three_counts() -> None:
    answer = parse_answer(body(batch_id=BATCH, stored=7, duplicates=2, rejected=1), BATCH)
    assert answer == Answer(stored=7, duplicates=2, rejected=1)
    assert answer is not None and answer.total == 10
    # Other keys beside them are another version's additions, not a reason to doubt the counts.
    assert parse_answer(body(batch_id=BATCH, stored=0, duplicates=0, rejected=0, took_ms=3), BATCH) == Answer(0, 0, 0)


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"{}",
        b"not json",
        b"[1, 2, 3]",
        b'"stored"',
        body(stored=1, duplicates=0, rejected=0),  # no batch_id
        body(batch_id="another-batch", stored=1, duplicates=0, rejected=0),
        body(batch_id=BATCH, stored=1, duplicates=0),  # a count missing
        body(batch_id=BATCH, stored=-1, duplicates=0, rejected=0),
        body(batch_id=BATCH, stored=1.0, duplicates=0, rejected=0),
        body(batch_id=BATCH, stored="1", duplicates=0, rejected=0),
        body(batch_id=BATCH, stored=True, duplicates=0, rejected=0),
        body(batch_id=BATCH, stored=None, duplicates=0, rejected=0),
        b'{"batch_id": "'
        + BATCH.encode()
        + b'", "stored": 1, "duplicates": 0, "rejected": 0, "pad": "'
        + b"x" * 5000
        + b'"}',
    ],
)
def test_anything_else_is_not_the_collectors_answer(text: bytes) -> None:
    assert parse_answer(text, BATCH) is None


def test_a_2xx_without_counts_is_uncounted() -> None:
    assert fates_of(None, 5) == {"uncounted": 5}
    assert fates_of(Answer(3, 1, 1), 5) == {"stored": 3, "duplicates": 1, "rejected": 1}


def test_the_gap_is_what_nothing_accounts_for() -> None:
    whole = TopicAccount("console", accepted=10, stored=4, duplicates=1, rejected=1, dead_lettered=1, queued=3)
    assert whole.gap == 0
    assert "(adds up)" in account_line(whole)
    short = TopicAccount("cli", accepted=10, stored=4)
    assert short.gap == 6
    assert "GAP of 6 events" in account_line(short)
    assert short.as_dict()["gap"] == 6


def test_accounts_are_read_by_topic_with_their_queued_events() -> None:
    rows = [("console", "accepted", 5), ("console", "stored", 3), ("cli", "accepted", 2), ("cli", "epoch", 9)]
    assert accounts(rows, {"console": 2, "server": 1}) == (
        TopicAccount("cli", accepted=2),
        TopicAccount("console", accepted=5, stored=3, queued=2),
        TopicAccount("server", queued=1),
    )
