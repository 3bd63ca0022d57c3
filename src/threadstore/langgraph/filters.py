"""JSON containment filters (`metadata @> {...}`), with every key and value bound as a parameter,
so that one compiled statement serves every filter of the same shape."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import ColumnElement

from threadstore.fastsql import dumps, one_of

Shape = tuple[str, ...]


def shape_of(wanted: dict[str, Any], dialect: str) -> Shape:
    """What a compiled filter depends on: on PostgreSQL nothing (one `@>`); on SQLite the JSON
    kind of each scalar value, in order (nested values are left to `json_contains`)."""
    if dialect == "postgresql":
        return ("@>",)
    return tuple(_kind(value) for value in wanted.values() if not _nested(value))


def params_of(wanted: dict[str, Any], dialect: str, prefix: str) -> dict[str, Any]:
    """The parameters of the filter `contains(column, shape_of(wanted), prefix)`."""
    if dialect == "postgresql":
        return {prefix: dumps(wanted)}
    params: dict[str, Any] = {}
    scalars = [(key, value) for key, value in wanted.items() if not _nested(value)]
    for index, (key, value) in enumerate(scalars):
        params[f"{prefix}_{index}_key"] = key
        if _kind(value) in ("text", "number"):
            params[f"{prefix}_{index}_value"] = value
    return params


def contains(column: sa.Column[Any], shape: Shape, prefix: str) -> ColumnElement[bool]:
    """A condition true where the JSON object in `column` contains the filter, as PostgreSQL's
    `@>`. On SQLite it tests the keys with scalar values; `json_contains` finishes the nested ones."""
    if shape == ("@>",):
        return column.op("@>")(sa.cast(sa.bindparam(prefix, type_=sa.String), JSONB))
    return sa.and_(sa.true(), *(_sqlite_has(column, kind, f"{prefix}_{index}") for index, kind in enumerate(shape)))


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


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "text" if isinstance(value, str) else "number"


def _sqlite_has(column: sa.Column[Any], kind: str, name: str) -> ColumnElement[bool]:
    entry = sa.func.json_each(column).table_valued("key", "value", "type").alias("entry")
    conditions: list[ColumnElement[bool]] = [entry.c.key == sa.bindparam(f"{name}_key", type_=sa.String)]
    if kind in ("null", "true", "false"):
        conditions.append(entry.c.type == kind)
    elif kind == "text":
        conditions += [entry.c.type == "text", entry.c.value == sa.bindparam(f"{name}_value", type_=sa.String)]
    else:  # a number: 1 and 1.0 are the same JSON number
        conditions += [one_of(entry.c.type, ("integer", "real")), entry.c.value == sa.bindparam(f"{name}_value")]
    return sa.exists(sa.select(sa.literal(1)).select_from(entry).where(*conditions))
