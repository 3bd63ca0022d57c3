"""Order that does not follow the wall clock, which NTP may step back: numbers the database hands
out in order (`next_in_order`), and stamps no earlier than the ones they follow (`latest`).

Both are SQL expressions, compiled for each dialect, so that a statement built once (fastsql)
takes its order and its times from the database in the same write.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class latest(FunctionElement[int]):  # lower case, as the SQL functions it compiles to
    """The greatest of its arguments: `greatest(...)` on PostgreSQL, SQLite's `max(a, b, ...)`.
    Give it no NULL: SQLite's answer would be NULL."""

    type = sa.BigInteger()
    name = "latest"
    inherit_cache = True


@compiles(latest)
def _latest_sqlite(element: latest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


@compiles(latest, "postgresql")
def _latest_postgresql(element: latest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"greatest({compiler.process(element.clauses, **kw)})"


class next_in_order(FunctionElement[int]):  # lower case, as an SQL function
    """The next number of `column`'s order, greater than every number it holds: on PostgreSQL the
    sequence named `<table>_<column>` (`nextval`); on SQLite, where one writer holds the database
    at a time, one more than the column's greatest (an index on the column makes that one lookup).
    """

    type = sa.BigInteger()
    name = "next_in_order"
    inherit_cache = True


def _ordered_column(element: next_in_order) -> sa.Column[Any]:
    column = next(iter(element.clauses))
    assert isinstance(column, sa.Column) and isinstance(column.table, sa.Table)
    return column


def sequence_name(column: sa.Column[Any]) -> str:
    """The PostgreSQL sequence that numbers `column`."""
    return f"{column.table.name}_{column.name}"


@compiles(next_in_order)
def _next_sqlite(element: next_in_order, compiler: SQLCompiler, **kw: Any) -> str:
    column = _ordered_column(element)
    # An alias, so that inside an UPDATE of the same table the subquery reads the whole table
    # rather than correlating with the row being updated.
    held = column.table.alias("ordered")
    greatest = sa.select(sa.func.coalesce(sa.func.max(held.c[column.name]), 0) + 1).scalar_subquery()
    return compiler.process(greatest, **kw)


@compiles(next_in_order, "postgresql")
def _next_postgresql(element: next_in_order, compiler: SQLCompiler, **kw: Any) -> str:
    return f"nextval('{sequence_name(_ordered_column(element))}')"
