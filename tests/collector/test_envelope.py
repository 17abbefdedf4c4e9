"""The collector's strict JSON: orjson's speed where it is sure to agree with the standard library, which decides
the rest; a key twice and NaN refused at any depth."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console_proxy.collector.envelope import strict_loads

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5),
    max_leaves=30,
)


@given(VALUES)
def test_what_json_dumps_writes_reads_back_the_same(value: Any) -> None:
    assert strict_loads(json.dumps(value)) == value
    assert strict_loads(json.dumps(value, ensure_ascii=False, indent=1)) == value


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        '{"data": [{"x": {"k": 1, "k": 1}}]}',
        '{"a\\\\": 1, "a\\\\": 2}',
        '{"s": "\\":", "k": 1, "k": 2}',
        '{"a" : 1, "a"\n: 2}',
        "[NaN]",
        '{"n": Infinity}',
        '{"n": -Infinity}',
    ],
)
def test_a_key_twice_or_a_constant_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        strict_loads(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"s": "a\\":b", "t": 1}', {"s": 'a":b', "t": 1}),
        ('{"path": "C:\\\\dir\\\\", "x": ":"}', {"path": "C:\\dir\\", "x": ":"}),
        ('{"k": "v"  :', None),
    ],
)
def test_quotes_and_colons_inside_strings_are_not_keys(text: str, value: Any) -> None:
    if value is None:
        with pytest.raises(ValueError):
            strict_loads(text)
    else:
        assert strict_loads(text) == value
