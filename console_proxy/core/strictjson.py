"""JSON in and out through orjson, with the standard library's `json` as the definition and the arbiter.

The results are those of `json.loads(text)` (or of a stricter parse built on it) and of
`json.dumps(value, separators=(",", ":"), ensure_ascii=False)`; orjson only does the work where it is known to
agree, and the standard library does it wherever orjson refuses (NaN and Infinity, lone surrogates, numbers out
of a double's range, deep nesting) or could disagree (a key twice). Pure, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

# orjson nests at most 1024 deep, the standard library as deep as the interpreter's recursion limit allows from
# where it is called: a text with at most this many brackets (in strings too) is far from both limits, so both
# parse it or both refuse it. Longer texts go to the standard library.
MAX_FAST_BRACKETS = 512
# Passed through to the standard library, which decides: a str or dict subclass, a dataclass, a datetime.
_DUMPS_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def loads(text: str, arbiter: Callable[[str], Any] = json.loads) -> Any:
    """`arbiter(text)`: `json.loads` or a stricter parse built on it (one that refuses NaN or a key twice).

    orjson parses `text` when it is sure to give the same: it accepts no NaN or Infinity, and a text that orjson
    writes back byte for byte from what it parsed, or in which every ':' is a key's (as many as the keys parsed),
    has no key twice. Anything else, and everything orjson
    refuses, is the arbiter's, with its own value or its own error (ValueError, RecursionError).
    One difference, in values only: an integer of 20 to 308 digits (past 64 bits) parsed by orjson is a float.
    """
    if text.count("[") + text.count("{") <= MAX_FAST_BRACKETS:
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            # Written back as the text it came from: the text holds each key once, as the document does (a key
            # twice would be written once, so shorter). What a browser's JSON.stringify sends is written back so.
            if orjson.dumps(document) == text.encode() or _keys(document) == text.count(":"):
                return document
    return arbiter(text)


def _keys(value: Any) -> int:
    """How many keys the objects in `value` hold, all together."""
    if type(value) is dict:
        count = len(value)
        items: Any = value.values()
    elif type(value) is list:
        count, items = 0, value
    else:
        return 0
    for item in items:
        kind = type(item)
        if kind is dict:
            # One level inline: most objects hold only scalars, and a call per object costs more than this loop.
            count += len(item)
            for inner in item.values():
                if type(inner) is dict or type(inner) is list:
                    count += _keys(inner)
        elif kind is list:
            count += _keys(item)
    return count


def dumps(value: Any) -> bytes:
    """Compact JSON in UTF-8: `json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()`.

    For values of str, int, bool, None, lists and dicts (what outbound events hold; a float may be written
    differently, 1e16 for 1e+16). Raises what the standard library raises (TypeError, UnicodeEncodeError for a
    lone surrogate).
    """
    try:
        return orjson.dumps(value, option=_DUMPS_OPTIONS)
    except TypeError:
        return _encode(value).encode()


def dumps_text(value: Any) -> str:
    """`json.dumps(value, separators=(",", ":"), ensure_ascii=False)`, as text (a lone surrogate stays in it);
    the values `dumps` takes."""
    try:
        return orjson.dumps(value, option=_DUMPS_OPTIONS).decode()
    except TypeError:
        result: str = _encode(value)
        return result
