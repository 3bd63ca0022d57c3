"""The hot path's JSON: what it writes is exactly what json.dumps writes, and reads back equal."""

from __future__ import annotations

import json
from typing import Any

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
