"""End-to-end accounting of upstream mode, per topic: what the gate accepted, and what became of it by the collector's
answer (docs/design.md, "End-to-end accounting"). Pure: the answer's parsing and the figures' arithmetic; the
queues keep the counts, each in the same transaction (or script) as the change it counts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

# What became of an accepted event, once it left the queue: the collector's three counts, a 2xx that gave none
# (another collector), refused for good, too old, gone with a Redis that kept nothing.
FATES = ("stored", "duplicates", "rejected", "uncounted", "dead_lettered", "expired", "lost")
# The counts kept per topic: accepted, and every fate (queued is what is still in the queue, read there).
COUNTS = ("accepted", *FATES)
# The collector's answer: `200 {"batch_id", "stored", "duplicates", "rejected"}` (docs/collector.md).
ANSWER_COUNTS = ("stored", "duplicates", "rejected")
# Longest answer body read for its counts: the collector's is under 200 bytes.
MAX_ANSWER_BYTES = 4096


@dataclasses.dataclass(frozen=True)
class Answer:
    """The collector's counts for one batch, as it answered them."""

    stored: int
    duplicates: int
    rejected: int

    @property
    def total(self) -> int:
        return self.stored + self.duplicates + self.rejected


def parse_answer(body: bytes, batch_id: str) -> Answer | None:
    """The counts of a 2xx answer to the batch `batch_id`, or None when it is not the collector's answer to it:
    not a JSON object, another batch_id, a count missing or not a whole number >= 0 (a bool is not one)."""
    if len(body) > MAX_ANSWER_BYTES:
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if type(document) is not dict or document.get("batch_id") != batch_id:
        return None
    counts: list[int] = []
    for name in ANSWER_COUNTS:
        count = document.get(name)
        if type(count) is not int or count < 0:
            return None
        counts.append(count)
    return Answer(*counts)


def fates_of(answer: Answer | None, events: int) -> dict[str, int]:
    """What `events` events taken by a 2xx became: the collector's counts, or `uncounted` without them."""
    if answer is None:
        return {"uncounted": events}
    return {"stored": answer.stored, "duplicates": answer.duplicates, "rejected": answer.rejected}


@dataclasses.dataclass(frozen=True)
class TopicAccount:
    """One topic's figures: accepted, the fates, and what is still queued. `gap` is what none of them explains
    (0 when every accepted event is accounted for)."""

    topic: str
    accepted: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    uncounted: int = 0
    dead_lettered: int = 0
    expired: int = 0
    lost: int = 0
    queued: int = 0

    @property
    def gap(self) -> int:
        fates = (self.stored, self.duplicates, self.rejected, self.uncounted, self.dead_lettered, self.expired)
        return self.accepted - self.queued - sum(fates) - self.lost

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "gap": self.gap}

    def plus(self, changes: Mapping[str, int]) -> TopicAccount:
        """These figures with `changes` (by count name, or `queued`) added."""
        return dataclasses.replace(self, **{name: getattr(self, name) + n for name, n in changes.items()})


def accounts(counts: Iterable[tuple[str, str, int]], queued: Mapping[str, int]) -> tuple[TopicAccount, ...]:
    """The topics' figures from (topic, count name, value) rows and the events queued by topic, by topic name.
    Names other than COUNTS are ignored."""
    by_topic: dict[str, dict[str, int]] = {topic: {} for topic in queued}
    for topic, name, value in counts:
        if name in COUNTS:
            by_topic.setdefault(topic, {})[name] = by_topic.get(topic, {}).get(name, 0) + int(value)
    return tuple(TopicAccount(topic, queued=int(queued.get(topic, 0)), **by_topic[topic]) for topic in sorted(by_topic))


def account_line(account: TopicAccount) -> str:
    """One topic's accounting for `console-proxy status`: accepted, where every one of them is, and the gap."""
    parts = [f"{account.stored} stored", f"{account.duplicates} duplicates", f"{account.rejected} rejected"]
    parts += [
        f"{getattr(account, name)} {name.replace('_', '-')}" for name in ("uncounted", "lost") if getattr(account, name)
    ]
    parts += [f"{account.queued} queued", f"{account.dead_lettered} dead-lettered", f"{account.expired} expired"]
    gap = account.gap
    tail = "adds up" if gap == 0 else f"GAP of {gap} events that nothing accounts for"
    return f"  {account.topic}: {account.accepted} accepted = {' + '.join(parts)} ({tail})"
