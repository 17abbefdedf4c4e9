"""The batches the serve bench posts: 20 events, each with identifiers in its route and a payload.

`repeated` routes are the same in every batch (what a console on one page sends: a cache's best case);
`fresh` routes hold identifiers never seen before (a cache's worst case). wrk_events.lua posts the
repeated batch, wrk_fresh.lua fresh ones, and the open-loop bench a mix of both, half and half.
"""

from __future__ import annotations

import json

EVENTS_PER_BATCH = 20


def _event(db: str, table: str, row: int) -> dict[str, object]:
    return {
        "type": "Data/SET_TABLE",
        "route": f"/console/data/{db}/schema/public/tables/{table}/browse?filter=id%3B%24eq%3B{row}",
        "payload": {"row": row, "note": "payload text that is dropped unread"},
    }


def repeated_event(i: int) -> dict[str, object]:
    """The i-th event of wrk_events.lua's batch."""
    return _event(f"db{i}", f"table{i}", i)


def fresh_event(seed: int, n: int) -> dict[str, object]:
    """An event whose database, table and row no earlier batch of this seed used."""
    return _event(f"db{seed}x{n}", f"t{seed}x{n}", seed * 1_000_000_000 + n)


def mixed_body(seed: int, i: int) -> bytes:
    """Batch i: ten repeated events and ten fresh ones."""
    half = EVENTS_PER_BATCH // 2
    events = [repeated_event(k + 1) for k in range(half)]
    events += [fresh_event(seed, i * half + k) for k in range(half)]
    return json.dumps({"events": events, "server_version": "v2.40.0"}, separators=(",", ":")).encode()
