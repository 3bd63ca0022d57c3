"""check_json: plain JSON is copied, anything else is refused with the path to the element."""

from __future__ import annotations

from typing import Any

import pytest

from threadstore.errors import ValidationError
from threadstore.validation import MAX_INT64, MAX_JSON_DEPTH, MIN_INT64, check_json


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": [1, {"b": "x\x00"}]}, "metadata.a[1].b must not contain NUL characters."),
        ({"a": [1, {3: "x"}]}, "metadata.a[1] key must be a string, not int."),
        ({"a": [float("nan")]}, "metadata.a[0] must not contain NaN or infinity."),
        ({"a": {"\ud800": 1}}, "metadata.a key must be valid Unicode text (no lone surrogates)."),
        ({"a": ["ok", ("t", {1, 2})]}, "metadata.a[1][1] must be JSON data, not set."),
        ("\x00", "metadata must not contain NUL characters."),
    ],
)
def test_a_refused_element_is_named_by_its_path(value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        check_json("metadata", value)
    assert str(raised.value) == message


def test_plain_json_comes_back_as_an_equal_copy() -> None:
    value = {"ü": "é", "n": [1, 2.5, None, True, {"k": ["v"]}], "t": ("a", "b")}
    checked = check_json("value", value)
    assert checked == {"ü": "é", "n": [1, 2.5, None, True, {"k": ["v"]}], "t": ["a", "b"]}
    assert checked is not value and checked["n"][4] is not value["n"][4]


def test_json_nests_at_most_max_json_depth_levels() -> None:
    deepest: Any = "x"
    for _ in range(MAX_JSON_DEPTH):
        deepest = [deepest]
    assert check_json("kwargs", deepest) == deepest
    with pytest.raises(ValidationError) as raised:
        check_json("kwargs", [deepest])
    assert str(raised.value) == f"kwargs must nest at most {MAX_JSON_DEPTH} levels deep."


def test_json_integers_stay_within_64_bits() -> None:
    assert check_json("n", [MAX_INT64, MIN_INT64]) == [MAX_INT64, MIN_INT64]
    with pytest.raises(ValidationError) as raised:
        check_json("n", {"a": [MAX_INT64 + 1]})
    assert str(raised.value) == "n.a[0] must be an integer within 64 bits (±2**63)."
