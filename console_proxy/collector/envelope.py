"""The body of `POST /v1/batches` read into an envelope, or refused as a whole. Pure, no I/O.

Only a body that is not the gate's envelope at all is refused (4xx): not JSON, not standard JSON (NaN, a key
twice), not `{"topic", "batch_id", "data": [...]}`, or too large. What is inside `data` is judged row by row.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from console_proxy.collector.house import loads, valid_uuid

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_EVENTS = 5000
MAX_TOPIC_LENGTH = 64
_KEYS = frozenset({"topic", "batch_id", "data"})


class EnvelopeError(ValueError):
    """A body refused whole: the status to answer and a fixed error text that never echoes the input."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


@dataclasses.dataclass(frozen=True)
class Envelope:
    topic: str
    batch_id: str
    rows: list[Any]


def _no_constant(name: str) -> Any:
    raise ValueError("not standard JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("a key appears twice")
    return document


def _strict(text: str) -> Any:
    return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)


def read_envelope(body: bytes, *, max_events: int = DEFAULT_MAX_EVENTS) -> Envelope:
    """The envelope in `body`; EnvelopeError (400 or 413) when it is not one."""
    try:
        document = loads(body.decode("utf-8"), _strict)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise EnvelopeError(400, "invalid JSON") from None
    if not isinstance(document, dict) or set(document) != _KEYS:
        raise EnvelopeError(400, "expected an object with exactly topic, batch_id and data")
    topic, batch_id, rows = document["topic"], document["batch_id"], document["data"]
    if not isinstance(topic, str) or not 0 < len(topic) <= MAX_TOPIC_LENGTH:
        raise EnvelopeError(400, "topic is not a short string")
    checked = valid_uuid(batch_id)
    if checked is None:
        raise EnvelopeError(400, "batch_id is not a UUID")
    if not isinstance(rows, list):
        raise EnvelopeError(400, "data is not an array")
    if len(rows) > max_events:
        raise EnvelopeError(413, "too many events in one batch")
    return Envelope(topic, checked, rows)
