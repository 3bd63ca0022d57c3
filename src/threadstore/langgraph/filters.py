"""JSON containment filters (`metadata @> {...}`), with every key and value bound as a parameter."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import ColumnElement


def contains(column: sa.Column[Any], wanted: dict[str, Any], dialect: str) -> ColumnElement[bool]:
    """A condition true where the JSON object in `column` contains `wanted`, as PostgreSQL's `@>`.
    On SQLite it tests the keys with scalar values; `json_contains` finishes the nested ones."""
    if dialect == "postgresql":
        return column.op("@>")(sa.cast(sa.literal(json.dumps(wanted)), JSONB))
    return sa.and_(sa.true(), *(_sqlite_has(column, key, value) for key, value in wanted.items() if not _nested(value)))


def needs_python(wanted: dict[str, Any], dialect: str) -> bool:
    """Whether `contains` left part of `wanted` to `json_contains` on this dialect."""
    return dialect != "postgresql" and any(_nested(value) for value in wanted.values())


def json_contains(stored: Any, wanted: Any) -> bool:
    """PostgreSQL's JSONB containment (`stored @> wanted`) in Python: objects contain the keys and
    values asked for, arrays contain each element asked for, scalars are equal (1 equals 1.0)."""
    if isinstance(wanted, dict):
        return isinstance(stored, dict) and all(k in stored and json_contains(stored[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(stored, list) and all(any(json_contains(s, w) for s in stored) for w in wanted)
    if isinstance(wanted, bool) or isinstance(stored, bool):
        return stored is wanted
    return bool(stored == wanted)


def _nested(value: Any) -> bool:
    return isinstance(value, dict | list)


def _sqlite_has(column: sa.Column[Any], key: str, value: Any) -> ColumnElement[bool]:
    entry = sa.func.json_each(column).table_valued("key", "value", "type").alias("entry")
    conditions: list[ColumnElement[bool]] = [entry.c.key == key]
    if value is None:
        conditions.append(entry.c.type == "null")
    elif isinstance(value, bool):
        conditions.append(entry.c.type == ("true" if value else "false"))
    elif isinstance(value, str):
        conditions += [entry.c.type == "text", entry.c.value == value]
    else:  # a number: 1 and 1.0 are the same JSON number
        conditions += [entry.c.type.in_(("integer", "real")), entry.c.value == value]
    return sa.exists(sa.select(sa.literal(1)).select_from(entry).where(*conditions))
