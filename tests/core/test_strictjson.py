"""fastjson agrees with the standard library's json: the same values and the same refusals, or it is a bug."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console_proxy.core import strictjson


def _outcome(parse: Any, text: str) -> object:
    """What parsing `text` gives: the value (numbers as one token: see `loads`), or the kind of refusal."""
    try:
        return _numbers_blind(parse(text))
    except RecursionError:
        return RecursionError
    except ValueError:
        return ValueError


def _numbers_blind(value: Any) -> Any:
    # loads may give a float for an integer past 64 bits; no number is ever read from a batch.
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return "NaN" if isinstance(value, float) and math.isnan(value) else float(value)
    if isinstance(value, list):
        return [_numbers_blind(item) for item in value]
    return {key: _numbers_blind(item) for key, item in value.items()}


@pytest.mark.parametrize(
    "text",
    [
        '{"events":[{"type":"A/B","route":"/x"}]}',
        '{"a":1,"a":2}',
        "NaN",
        '{"a":Infinity}',
        "-Infinity",
        "1e400",
        "123456789012345678901234567890",
        "9" * 5000,
        '"\\ud800"',
        '"\\u0000\\u2028"',
        '"\x7f"',
        '"\x1f"',
        "\ufeff{}",
        "[1,]",
        "{} ",
        " \t\n\r[]",
        "[] x",
        "",
        "01",
        "-",
        ".5",
        "+1",
        "1.",
        "[" * 200 + "]" * 200,
        "[" * 600 + "]" * 600,
        "[" * 100_000 + "]" * 100_000,
        '{"a":"' + "{" * 600 + '"}',
    ],
)
def test_loads_gives_what_json_loads_gives(text: str) -> None:
    assert _outcome(strictjson.loads, text) == _outcome(json.loads, text)


@settings(max_examples=300)
@given(st.text())
def test_loads_refuses_what_json_refuses_for_any_text(text: str) -> None:
    assert _outcome(strictjson.loads, text) == _outcome(json.loads, text)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@settings(max_examples=300)
@given(JSON_VALUES)
def test_loads_of_any_value_written_by_json(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert strictjson.loads(text) == json.loads(text)


@settings(max_examples=300)
@given(JSON_VALUES)
def test_dumps_writes_what_json_dumps_writes(value: Any) -> None:
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert strictjson.dumps_text(value) == expected
    try:
        data = expected.encode()
    except UnicodeEncodeError:  # a lone surrogate from st.text(): refused the same way
        with pytest.raises(UnicodeEncodeError):
            strictjson.dumps(value)
    else:
        assert strictjson.dumps(value) == data


@pytest.mark.parametrize("value", [{"a": 2**70}, {1: "one"}, {"a": type("Text", (str,), {})("x")}])
def test_what_orjson_refuses_the_standard_library_writes(value: Any) -> None:
    assert strictjson.dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("a key appears twice")
    return document


def _strict(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_unique_keys)


def _fast_strict(text: str) -> Any:
    return strictjson.loads(text, _strict)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"a":2}',
        '{"a":{"b":1,"b":1}}',
        '[{"a":1},{"a":1,"a":2}]',
        '{"a":"x:y","a":1}',
        '{"a:b":1,"a:b":2}',
        '{"a":1,"b":{"a":1}}',
        '{"events":[{"type":"A/B","route":"/x","type":"C/D"}]}',
    ],
)
def test_a_key_twice_is_left_to_the_arbiter(text: str) -> None:
    assert _outcome(_fast_strict, text) == _outcome(_strict, text)


def _object_text(pairs: list[tuple[str, int]]) -> str:
    return "{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in pairs) + "}"


@settings(max_examples=300)
@given(st.lists(st.lists(st.tuples(st.sampled_from(["a", "b", ":", "a:", "é"]), st.integers(0, 9)), max_size=4)))
def test_a_key_twice_anywhere_is_refused_by_a_strict_arbiter(objects: list[list[tuple[str, int]]]) -> None:
    text = "[" + ",".join(_object_text(pairs) for pairs in objects) + "]"
    assert _outcome(_fast_strict, text) == _outcome(_strict, text)


def _all_keys(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_all_keys(v) for v in value.values())
    if isinstance(value, list):
        return sum(_all_keys(v) for v in value)
    return 0


@given(JSON_VALUES)
def test_keys_counts_the_keys_of_every_object_at_any_depth(value: Any) -> None:
    # What decides between orjson and the arbiter: a miscount lets a key twice through or sends all to the arbiter.
    assert strictjson._keys(value) == _all_keys(value)
