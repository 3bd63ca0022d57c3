"""The one JSON encoder and decoder (orjson): every value check_json accepts is written as text
that reads back, with json.loads or with the decoder, as exactly the value json.dumps would have
stored; text json.dumps wrote reads back as json.loads reads it."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import assume, given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from threadstore.errors import ValidationError
from threadstore.fastsql import Raw, Statement, _decode_json, _json_text, dumps
from threadstore.validation import MAX_INT64, MAX_JSON_DEPTH, MIN_INT64, check_json


class Ratio(float):
    pass


class Name(str):
    pass


class Count(int):
    pass


class Colour(StrEnum):
    RED = "red"


class Level(IntEnum):
    HIGH = 3


@dataclass
class Point:
    x: int


# Everything a caller might hand check_json, what it refuses included: integers beyond 64 bits,
# NaN and infinity, lone surrogates, non-string keys, tuples and subclasses of the scalars.
any_text = st.text() | st.text(st.characters(exclude_categories=()), max_size=5)
any_scalar = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=MIN_INT64 - 2, max_value=MIN_INT64 + 2)
    | st.integers(min_value=MAX_INT64 - 2, max_value=MAX_INT64 + 2)
    | st.floats()
    | any_text
    | st.builds(Ratio, st.floats(allow_nan=False, allow_infinity=False))
    | st.builds(Name, st.text())
    | st.builds(Count, st.integers(min_value=MIN_INT64, max_value=MAX_INT64))
    | st.sampled_from([Colour.RED, Level.HIGH])
)
any_value = st.recursive(
    any_scalar,
    lambda children: (
        st.lists(children)
        | st.lists(children).map(tuple)
        | st.dictionaries(any_text, children)
        | st.dictionaries(st.integers(), children, max_size=2)
    ),
    max_leaves=30,
)


def checked(value: Any) -> Any:
    """`value` as check_json copies it, the form every stored value has; the test skips a refused one."""
    try:
        return check_json("value", value)
    except ValidationError:
        assume(False)


def exactly(value: Any) -> str:
    """A value in a form that tells apart what == does not (1 from 1.0 and True, 0.0 from -0.0)."""
    return json.dumps(value)


@given(any_value)
def test_what_check_json_accepts_is_written_as_text_json_loads_reads_as_json_dumps_text(value: Any) -> None:
    stored = checked(value)
    assert exactly(json.loads(dumps(stored))) == exactly(json.loads(json.dumps(stored)))


@given(any_value)
def test_what_check_json_accepts_reads_back_as_json_loads_reads_json_dumps_text(value: Any) -> None:
    stored = checked(value)
    assert exactly(_decode_json(_json_text(stored))) == exactly(json.loads(json.dumps(stored)))


@given(any_value, st.sampled_from(["", " ", "\n", "\t "]), st.sampled_from(["", " ", "\n"]))
def test_text_json_dumps_wrote_reads_back_as_json_loads_reads_it(value: Any, before: str, after: str) -> None:
    # What threadstore stored before orjson: ", " and ": " between items, non-ASCII as \u escapes.
    text = before + json.dumps(checked(value)) + after
    assert exactly(_decode_json(text)) == exactly(json.loads(text))


@pytest.mark.parametrize(
    "number",
    [MAX_INT64, MIN_INT64, 2**53 + 1, 0.1, -0.0, 1e16, 1e-7, 5e-324, 1.7976931348623157e308, 123456789.12345679],
)
def test_64_bit_integers_and_floats_read_back_identical(number: float) -> None:
    assert exactly(_decode_json(dumps([number]))) == exactly([number])


def test_a_value_nested_as_deep_as_check_json_allows_inside_an_object_is_written() -> None:
    deepest: Any = "x"
    for level in range(MAX_JSON_DEPTH):
        deepest = {"k": deepest} if level % 2 else [deepest]
    event = {"data": {"metadata": check_json("metadata", deepest)}}  # an event of an object holding it
    assert _decode_json(dumps(event)) == event


def test_a_float_subclass_check_json_lets_through_is_written_as_its_float() -> None:
    # orjson encodes str and int subclasses itself, but not float ones; json.dumps did.
    assert dumps(check_json("value", {"ratio": Ratio(0.5)})) == '{"ratio":0.5}'


def test_text_is_written_compact_and_unescaped() -> None:
    assert dumps({"a": [1, "é😀"], "b": None}) == '{"a":[1,"é😀"],"b":null}'


@pytest.mark.parametrize("value", [datetime.datetime(2026, 1, 1), Point(1), {1, 2}, b"x", object()])
def test_what_json_dumps_refuses_is_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        dumps({"a": [value]})


@pytest.mark.parametrize("text", ["[1] x", "{", "x", "", "NaN", "[1e400]"])
def test_text_that_is_not_json_is_refused_as_json_decode_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        _decode_json(text)


def test_json_stored_as_bytes_reads_back_as_json_loads_reads_it() -> None:
    assert _decode_json(b'{"a": [1, 2]}') == {"a": [1, 2]}


class _PipelineCutShort:
    """A DBAPI cursor whose executemany fails as psycopg's does when an interrupt cuts its pipeline
    short: with an error of its own, raised while it handles the interrupt."""

    def executemany(self, sql: str, rows: Any) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise AssertionError("pipeline.level == 0")  # noqa: B904  (as psycopg's: context, no cause)


class _Failing:
    """A DBAPI cursor whose executemany fails on its own (the caller may be handling an interrupt)."""

    def executemany(self, sql: str, rows: Any) -> None:
        raise AssertionError("its own failure")


def _raw_on(cursor: Any) -> Raw:
    raw = Raw(connection=None, dialect=sqlite.dialect())
    raw._cursor = cursor
    return raw


_ANY_INSERT = Statement(sa.insert(sa.table("t", sa.column("a"))).values(a=sa.bindparam("a")))


def test_an_interrupt_behind_a_drivers_failure_in_executemany_reaches_the_caller() -> None:
    with pytest.raises(KeyboardInterrupt):
        _raw_on(_PipelineCutShort()).execute_many(_ANY_INSERT, [{"a": 1}, {"a": 2}])


def test_a_failure_in_executemany_while_the_caller_handles_an_interrupt_stays_that_failure() -> None:
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        with pytest.raises(AssertionError, match="its own failure"):
            _raw_on(_Failing()).execute_many(_ANY_INSERT, [{"a": 1}, {"a": 2}])


class _OneStatement:
    """A DBAPI cursor that records what it is asked to run."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def execute(self, sql: str, params: Any) -> None:
        self.calls.append(("execute", params))

    def executemany(self, sql: str, rows: Any) -> None:
        self.calls.append(("executemany", rows))


def test_execute_many_of_one_row_runs_one_statement_not_the_drivers_executemany() -> None:
    cursor = _OneStatement()

    _raw_on(cursor).execute_many(_ANY_INSERT, [{"a": 1}])

    assert cursor.calls == [("execute", (1,))]
