"""The dashboard's figures from the store's aggregates, with every figure that stands for fewer than
`min_installations` installations withheld. Pure, no I/O.

The rule: each row of each chart (a page, an action, a version, a command, a day of a topic, a bucket of a
server count) is shown only when at least `min_installations` distinct installations stand behind it; a
command's error rate only when as many installations had errors (or none did). What is withheld is left out of
the data, not hidden by the page; the data says how many rows each chart withheld, never which.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping
from datetime import date
from typing import Any

DEFAULT_MIN_INSTALLATIONS = 5
TOP_ROWS = 20
UNKNOWN_VERSION = "unknown"
# Buckets of a server count: (label, lowest value, highest value or None).
BUCKETS = (
    ("0", 0, 0),
    ("1-9", 1, 9),
    ("10-99", 10, 99),
    ("100-999", 100, 999),
    ("1000-9999", 1000, 9999),
    ("10000+", 10000, None),
)


@dataclasses.dataclass(frozen=True)
class Aggregates:
    """What the store counted, before the threshold: each row ends with its number of distinct installations."""

    installations: int
    by_day: list[tuple[date, str, int, int]]  # day, topic, events, installations
    pages: list[tuple[str, int, int]]  # url, events, installations
    actions: list[tuple[str, int, int]]  # event_type, events, installations
    server_versions: list[tuple[str | None, int]]
    cli_versions: list[tuple[str | None, int]]
    commands: list[tuple[str, int, int, int, int]]  # command, events, installations, errors, erring installations
    latest_metrics: list[tuple[str, Mapping[str, Any]]]  # installation, its latest server counts


def _top(rows: list[tuple[str, int, int]], k: int, name: str) -> dict[str, Any]:
    shown = [r for r in rows if r[2] >= k]
    withheld = len(rows) - len(shown)
    shown.sort(key=lambda r: (-r[1], r[0]))
    return {
        "rows": [{name: r[0], "events": r[1], "installations": r[2]} for r in shown[:TOP_ROWS]],
        "withheld": withheld,
    }


def _versions(rows: list[tuple[str | None, int]], k: int) -> dict[str, Any]:
    shown = sorted(((v or UNKNOWN_VERSION, n) for v, n in rows if n >= k), key=lambda r: (-r[1], r[0]))
    return {
        "rows": [{"version": v, "installations": n} for v, n in shown],
        "withheld": sum(1 for r in rows if r[1] < k),
    }


def _by_day(rows: list[tuple[date, str, int, int]], k: int) -> dict[str, Any]:
    shown = [r for r in rows if r[3] >= k]
    days = sorted({r[0] for r in shown})
    topics = sorted({r[1] for r in shown})
    cells = {(r[0], r[1]): r[2] for r in shown}
    series = [{"topic": t, "events": [cells.get((d, t)) for d in days]} for t in topics]
    return {"days": [d.isoformat() for d in days], "series": series, "withheld": len(rows) - len(shown)}


def _commands(rows: list[tuple[str, int, int, int, int]], k: int) -> dict[str, Any]:
    shown = sorted((r for r in rows if r[2] >= k), key=lambda r: (-r[1], r[0]))
    out = []
    rates_withheld = 0
    for command, events, installations, errors, erring in shown[:TOP_ROWS]:
        rate: float | None = round(errors / events, 4) if events else 0.0
        if 0 < erring < k:
            rate = None
            rates_withheld += 1
        out.append({"command": command, "events": events, "installations": installations, "error_rate": rate})
    return {"rows": out, "withheld": sum(1 for r in rows if r[2] < k), "rates_withheld": rates_withheld}


def flatten(metrics: Mapping[str, Any]) -> dict[str, int]:
    """{"relationships": {"manual": 3}} -> {"relationships.manual": 3}; anything not a count is left out."""
    flat: dict[str, int] = {}
    for name, value in metrics.items():
        if type(value) is int:
            flat[name] = value
        elif isinstance(value, dict):
            flat.update({f"{name}.{inner}": v for inner, v in value.items() if type(v) is int})
    return flat


def _bucket(value: int) -> str:
    for label, low, high in BUCKETS:
        if value >= low and (high is None or value <= high):
            return label
    return BUCKETS[-1][0]


def _server_counts(latest: list[tuple[str, Mapping[str, Any]]], k: int) -> dict[str, Any]:
    counts: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for installation, metrics in latest:
        for name, value in flatten(metrics).items():
            counts[name][_bucket(value)].add(installation)
    out = []
    withheld = 0
    for name in sorted(counts):
        buckets = []
        for label, _, _ in BUCKETS:
            n = len(counts[name].get(label, ()))
            if n >= k:
                buckets.append({"bucket": label, "installations": n})
            elif n:
                withheld += 1
        if buckets:
            out.append({"name": name, "buckets": buckets})
    return {"metrics": out, "buckets": [label for label, _, _ in BUCKETS], "withheld": withheld}


def figures(aggregates: Aggregates, *, min_installations: int, window_days: int) -> dict[str, Any]:
    """The dashboard's data: only figures that at least `min_installations` installations stand behind."""
    k = min_installations
    return {
        "min_installations": k,
        "window_days": window_days,
        "installations": aggregates.installations if aggregates.installations >= k else None,
        "events_by_day": _by_day(aggregates.by_day, k),
        "top_pages": _top(aggregates.pages, k, "url"),
        "top_actions": _top(aggregates.actions, k, "action"),
        "server_versions": _versions(aggregates.server_versions, k),
        "cli_versions": _versions(aggregates.cli_versions, k),
        "cli_commands": _commands(aggregates.commands, k),
        "server_counts": _server_counts(aggregates.latest_metrics, k),
    }
