"""The strict JSON parse, candidate by candidate: time per batch and whether each keeps the contract's rules.

    .venv/bin/python bench/bench_parse.py [--batches 3000] [--repeat 7]      # msgspec is measured when installed

Every candidate is run as the gate would run it, with the checks it needs to refuse what the contract refuses
(a key twice, NaN and Infinity; raw control characters in strings; lone surrogates are refused field by field
later, by every candidate alike): time per batch of batches.py's mix (20 events, best of --repeat), and the
answers to a corpus of texts each rule is about, which must be those of the standard library's strict parse.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import orjson
from batches import mixed_body

from console_proxy.core import strictjson
from console_proxy.sources.base import _strict_stdlib, strict_json

CORPUS = [
    '{"a":1,"a":2}',
    '{"events":[{"type":"x","type":"y"}]}',
    '{"a":NaN}',
    '{"a":Infinity}',
    '{"a":-Infinity}',
    '{"a":"\x01"}',
    '{"a":"\\ud800"}',
    '{"a":"\\u0001"}',
    '{"a":"x:y","b":1}',
    '{"a":1}',
    "[1,2,3]",
    '{"a":1e999}',
    '{"a":' + "1" * 400 + "}",
    "[" * 600 + "]" * 600,
]


def _answer(parse: Callable[[str], Any], text: str) -> str:
    try:
        return repr(parse(text))
    except (ValueError, RecursionError) as exc:
        return type(exc).__name__.replace("JSONDecodeError", "ValueError")


def candidates() -> dict[str, Callable[[str], Any]]:
    def orjson_key_count(text: str) -> Any:  # main's strictjson.loads before issue 22
        if text.count("[") + text.count("{") <= strictjson.MAX_FAST_BRACKETS:
            try:
                document = orjson.loads(text)
            except orjson.JSONDecodeError:
                pass
            else:
                if strictjson._keys(document) == text.count(":"):
                    return document
        return _strict_stdlib(text)

    found: dict[str, Callable[[str], Any]] = {
        "strictjson now (orjson, written back or key count, stdlib arbiter)": strict_json,
        "orjson + key count, stdlib arbiter (before)": orjson_key_count,
        "stdlib json, object_pairs_hook + parse_constant": _strict_stdlib,
    }
    try:
        # Optional and not a dependency: measured only where it is installed (pip install msgspec).
        msgspec: Any = importlib.import_module("msgspec")
    except ImportError:
        return found
    decode, encode = msgspec.json.decode, msgspec.json.encode

    def with_msgspec(text: str) -> Any:
        if text.count("[") + text.count("{") <= strictjson.MAX_FAST_BRACKETS:
            try:
                document = decode(text)
            except msgspec.DecodeError:
                pass
            else:
                if encode(document) == text.encode() or strictjson._keys(document) == text.count(":"):
                    return document
        return _strict_stdlib(text)

    found["msgspec, written back or key count, stdlib arbiter"] = with_msgspec
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    texts = [mixed_body(7, i).decode() for i in range(args.batches)]
    reference = [_answer(_strict_stdlib, t) for t in CORPUS]
    print("| candidate | us per batch of 20 | corpus answers as the standard library's |\n|---|---|---|")
    for name, parse in candidates().items():
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            for text in texts:
                parse(text)
            best = min(best, (time.perf_counter() - start) / len(texts) * 1e6)
        differ = [t[:24] for t, ref in zip(CORPUS, reference, strict=True) if _answer(parse, t) != ref]
        print(f"| {name} | {best:.1f} | {'all' if not differ else 'differs on ' + repr(differ)} |")


if __name__ == "__main__":
    main()
