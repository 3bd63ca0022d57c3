"""JSON containment filters (`metadata @> {...}`), with every key and value bound as a parameter."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import ColumnElement

# json_each's `type` for each Python scalar; containment on SQLite compares one key at a time.
_SQLITE_TYPES = {str: "text", int: "integer", float: "real"}


def contains(column: sa.Column[Any], wanted: dict[str, Any], dialect: str) -> ColumnElement[bool]:
    """A condition true where the JSON object in `column` holds every key of `wanted` with its value
    (nested objects and lists compare whole on SQLite, by containment on PostgreSQL)."""
    if dialect == "postgresql":
        return column.op("@>")(sa.cast(sa.literal(json.dumps(wanted)), JSONB))
    return sa.and_(sa.true(), *(_sqlite_has(column, key, value) for key, value in wanted.items()))


def _sqlite_has(column: sa.Column[Any], key: str, value: Any) -> ColumnElement[bool]:
    entry = sa.func.json_each(column).table_valued("key", "value", "type").alias("entry")
    conditions: list[ColumnElement[bool]] = [entry.c.key == key]
    if value is None:
        conditions.append(entry.c.type == "null")
    elif isinstance(value, bool):
        conditions.append(entry.c.type == ("true" if value else "false"))
    elif type(value) in _SQLITE_TYPES:
        conditions += [entry.c.type == _SQLITE_TYPES[type(value)], entry.c.value == value]
    else:
        conditions += [
            entry.c.type.in_(("object", "array")),
            sa.func.json(entry.c.value) == sa.func.json(json.dumps(value)),
        ]
    return sa.exists(sa.select(sa.literal(1)).select_from(entry).where(*conditions))
