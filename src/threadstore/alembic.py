"""Filters for an application's Alembic `env.py`, so that its autogenerate leaves threadstore's
tables alone (threadstore migrates them itself, with its own history and version table)::

    import threadstore.alembic

    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        include_name=threadstore.alembic.include_name,
    )
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from threadstore.tables import names

if TYPE_CHECKING:
    from alembic.runtime.environment import NameFilterParentNames, NameFilterType

_THREADSTORE_TABLES = names()


def is_threadstore_table(name: str | None) -> bool:
    """Whether `name` is one of threadstore's tables (its version table included)."""
    return name in _THREADSTORE_TABLES


def include_name(name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames) -> bool:
    """Alembic's `include_name` hook: every name but threadstore's tables (and what is on them)."""
    if type_ == "table":
        return not is_threadstore_table(name)
    return not is_threadstore_table(parent_names.get("table_name"))


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's `include_object` hook, for an env.py that filters objects: as `include_name`."""
    table = getattr(obj, "table", None)
    table_name = name if type_ == "table" else getattr(table, "name", None)
    return not is_threadstore_table(table_name)


def include_threadstore_name(name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames) -> bool:
    """The reverse of `include_name`, for threadstore's own autogenerate: only threadstore's tables."""
    if type_ == "schema":
        return True
    return not include_name(name, type_, parent_names)


def built_on(dialect: str) -> Callable[..., bool]:
    """Alembic's `include_object`: leave out what the models build only on another dialect
    (`ddl_if`, e.g. PostgreSQL's GIN index), which autogenerate would report as missing."""

    def include(item: Any, *_args: Any) -> bool:
        condition = getattr(item, "_ddl_if", None)
        return condition is None or condition.dialect is None or condition.dialect == dialect

    return include
