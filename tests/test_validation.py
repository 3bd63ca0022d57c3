"""check_json: plain JSON is copied, anything else is refused with the path to the element."""

from __future__ import annotations

from typing import Any

import pytest

from threadstore.errors import ValidationError
from threadstore.validation import check_json


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
