"""The SQLModel base every table derives from: threadstore's own metadata and naming convention.

threadstore keeps its tables in a registry of its own, so that a user's SQLModel tables never
enter threadstore's migrations and threadstore's never enter theirs.
"""

from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Integer, MetaData, Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeEngine
from sqlmodel import Field, SQLModel

from threadstore.lifecycle import Machine

# Every table's name starts with this, so that an application's own tables (a `threads`, a
# `messages`) and threadstore's can share one database. Fixed, not configurable: the migrations
# name the tables, and one set of names keeps one schema to migrate and check.
TABLE_PREFIX = "threadstore_"


def _unprefixed_table_name(constraint: Any, table: Table) -> str:
    return table.name.removeprefix(TABLE_PREFIX)


def _unprefixed_referred_table_name(constraint: Any, table: Table) -> str:
    referred: str = constraint.elements[0].target_fullname.split(".")[-2]
    return referred.removeprefix(TABLE_PREFIX)


# Indexes, which share one namespace with the tables, are named by the table's whole name, and so
# are primary keys, whose names PostgreSQL gives their indexes. The other constraints keep the
# names they had before the tables took the prefix (migration 0010): SQLite keeps a constraint's
# name inside its table, where no other table's names are, and renames one only by rebuilding the
# table, which would fire the ON DELETE actions of every table that references it (an
# application's included). (A primary key's old name left there is read by nothing.)
NAMING_CONVENTION: dict[str, Any] = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(unprefixed_table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(unprefixed_table_name)s_%(constraint_name)s",
    "fk": "fk_%(unprefixed_table_name)s_%(column_0_name)s_%(unprefixed_referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "unprefixed_table_name": _unprefixed_table_name,
    "unprefixed_referred_table_name": _unprefixed_referred_table_name,
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)
_registry = registry(metadata=metadata)


class Base(SQLModel, registry=_registry):
    """The root of threadstore's table classes."""


def table_of(model: type[Base]) -> Table:
    """The Core table of a table class, for the repositories' SQLAlchemy Core queries."""
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


# A 64-bit key (the seed's `long`), declared INTEGER on SQLite, where only an INTEGER PRIMARY KEY
# is the rowid and numbers new rows itself.
ROW_ID = BigInteger().with_variant(Integer, "sqlite")


def row_id() -> Any:
    """A model field: the table's 64-bit integer primary key, numbered by the database."""
    return Field(default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True))


def json_type() -> TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL; Python None is SQL NULL, not the JSON text 'null'."""
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def json_column(name: str, *, nullable: bool) -> Column[Any]:
    """A JSON column named `name`."""
    return Column(name, json_type(), nullable=nullable)


def status_checks(machine: Machine) -> list[CheckConstraint]:
    """CHECK constraints that keep each of `machine`'s field rules in the database."""
    checks = []
    for column, rule in machine.fields.items():
        statuses = ", ".join(f"'{status}'" for status in sorted(rule.statuses))
        condition = (
            f"(status IN ({statuses})) = ({column} IS NOT NULL)"
            if rule.required
            else f"{column} IS NULL OR status IN ({statuses})"
        )
        checks.append(CheckConstraint(condition, name=f"{column}_by_status"))
    return checks


def one_of(column: str, values: tuple[str, ...] | frozenset[str], name: str) -> CheckConstraint:
    """A CHECK constraint that keeps `column` within `values`."""
    listed = ", ".join(f"'{value}'" for value in sorted(values))
    return CheckConstraint(f"{column} IN ({listed})", name=name)
