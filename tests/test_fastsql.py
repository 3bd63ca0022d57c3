"""The hot path's JSON: what it writes is exactly what json.dumps writes, and reads back equal."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadstore.fastsql import _decode_json, _json_text

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(json_values)
def test_json_written_is_what_json_dumps_writes(value: Any) -> None:
    expected = None if value is None else json.dumps(value)
    assert _json_text(value) == expected


@given(json_values)
def test_json_written_reads_back_equal(value: Any) -> None:
    assert _decode_json(_json_text(value)) == value


@given(json_values, st.sampled_from(["", " ", "\n", "\t "]), st.sampled_from(["", " ", "\n"]))
def test_json_another_writer_left_with_whitespace_reads_back_equal(value: Any, before: str, after: str) -> None:
    assert _decode_json(before + json.dumps(value) + after) == value


@pytest.mark.parametrize("text", ["[1] x", "{", "x", ""])
def test_text_that_is_not_json_is_refused_as_json_loads_refuses_it(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        _decode_json(text)


def test_json_stored_as_bytes_reads_back_as_json_loads_reads_it() -> None:
    assert _decode_json(b'{"a": [1, 2]}') == {"a": [1, 2]}
