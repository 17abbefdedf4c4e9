"""The body of `POST /v1/batches` read into an envelope, or refused as a whole. Pure, no I/O.

Only a body that is not the gate's envelope at all is refused (4xx): not JSON, not standard JSON (NaN, a key
twice), not `{"topic", "batch_id", "data": [...]}`, or too large. What is inside `data` is judged row by row.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import orjson

from console_proxy.collector.house import valid_uuid

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


# The end of an object key: an unescaped quote, then a colon. In valid JSON a string that is a value is followed by
# , ] or }, and a quote inside a string is escaped, so without any escaped backslash in the text (which would make
# a quote after it look escaped) every match is exactly one key.
_KEY_END = re.compile(r'(?<!\\)"\s*:')


def _keys(value: Any) -> int:
    if type(value) is dict:
        return len(value) + sum(_keys(v) for v in value.values() if type(v) is dict or type(v) is list)
    if type(value) is list:
        return sum(_keys(v) for v in value if type(v) is dict or type(v) is list)
    return 0


def strict_loads(text: str) -> Any:
    """`json.loads` of standard JSON only (no NaN or Infinity, no key twice): orjson, which refuses NaN, when the
    text shows as many keys as orjson kept (so none came twice); else the standard library, which decides."""
    if "\\\\" not in text:
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            if _keys(document) == len(_KEY_END.findall(text)):
                return document
    return _strict(text)


def read_envelope(body: bytes, *, max_events: int = DEFAULT_MAX_EVENTS) -> Envelope:
    """The envelope in `body`; EnvelopeError (400 or 413) when it is not one."""
    try:
        document = strict_loads(body.decode("utf-8"))
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
