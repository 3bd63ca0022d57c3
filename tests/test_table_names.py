"""threadstore's names in a shared database: every table starts with `threadstore_`, every index
carries its table's name after its kind, every name fits PostgreSQL, and a migrated database
names everything as one the models make (migration 0010 renamed what the earlier ones made).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import threadstore.tables
from tests.conftest import BACKENDS, new_postgres_schema, postgres_url_in_schema
from threadstore import migrate
from threadstore.db import create_engine
from threadstore.schema import TABLE_PREFIX, metadata
from threadstore.versions import VERSION_TABLE

POSTGRES_MAX_IDENTIFIER = 63
Names = dict[str, list[str]]


def model_names() -> list[str]:
    """Every name the models give: tables, indexes, constraints, sequences."""
    names = [table.name for table in metadata.sorted_tables]
    names += [str(index.name) for table in metadata.sorted_tables for index in table.indexes]
    names += [str(constraint.name) for table in metadata.sorted_tables for constraint in table.constraints]
    return names + [sequence.name for sequence in metadata._sequences.values()]


def test_every_table_name_starts_with_the_prefix() -> None:
    assert sorted(name for name in threadstore.tables.names() if not name.startswith(TABLE_PREFIX)) == []
    assert VERSION_TABLE in threadstore.tables.names()


def test_every_primary_key_name_carries_its_tables_name() -> None:
    # On PostgreSQL a primary key's name is also its index's, among the tables: an application
    # whose naming convention gives `pk_%(table_name)s` has a `pk_threads` of its own.
    names = {table.name: str(table.primary_key.name) for table in metadata.sorted_tables}
    assert names == {table: f"pk_{table}" for table in names}


def test_every_index_name_is_its_kind_then_its_tables_name() -> None:
    misnamed = [
        (table.name, index.name)
        for table in metadata.sorted_tables
        for index in table.indexes
        if not str(index.name).startswith((f"ix_{table.name}_", f"uq_{table.name}_"))
    ]
    assert misnamed == []


def test_every_sequence_name_starts_with_the_prefix() -> None:
    sequences = [sequence.name for sequence in metadata._sequences.values()]
    assert sequences and all(name.startswith(TABLE_PREFIX) for name in sequences)


def test_every_name_fits_a_postgresql_identifier() -> None:
    # A longer name would be cut and hashed by SQLAlchemy on PostgreSQL only: two backends, two names.
    assert [name for name in model_names() if len(name) > POSTGRES_MAX_IDENTIFIER] == []


def names_in(engine: Engine) -> Names:
    """Every name in the database: each table's indexes and constraints, and PostgreSQL's sequences."""
    found: Names = {}
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        sqlite = connection.dialect.name == "sqlite"
        for table in inspector.get_table_names():
            if table == VERSION_TABLE:
                continue
            # SQLite keeps a primary key's name in its table's text only, where migration 0010
            # cannot rename it and nothing reads it (schema.py).
            primary_key = [] if sqlite else [str(inspector.get_pk_constraint(table)["name"])]
            found[table] = sorted(
                [str(index["name"]) for index in inspector.get_indexes(table)]
                + primary_key
                + [str(fk["name"]) for fk in inspector.get_foreign_keys(table)]
                + [str(unique["name"]) for unique in inspector.get_unique_constraints(table)]
                + [str(check["name"]) for check in inspector.get_check_constraints(table)]
            )
        if connection.dialect.name == "postgresql":
            found["sequences"] = sorted(inspector.get_sequence_names())
    return found


@contextmanager
def engine_on_new_database(backend: str, tmp_path: Path, name: str) -> Iterator[Engine]:
    if backend == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / f'{name}.db'}")
        yield engine
        engine.dispose()
        return
    with new_postgres_schema() as schema:
        engine = create_engine(postgres_url_in_schema(schema))
        yield engine
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_migrated_database_names_everything_as_the_models_do(backend: str, tmp_path: Path) -> None:
    with (
        engine_on_new_database(backend, tmp_path, "migrated") as migrated,
        engine_on_new_database(backend, tmp_path, "modelled") as modelled,
    ):
        migrate.upgrade(migrated)
        metadata.create_all(modelled)

        assert names_in(migrated) == names_in(modelled)
        assert all(table.startswith(TABLE_PREFIX) for table in names_in(migrated) if table != "sequences")


# The naming convention SQLAlchemy's and Alembic's documentation recommend to applications.
DOCUMENTED_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_applications_tables_named_as_threadstores_once_were_fit_beside_them(backend: str, tmp_path: Path) -> None:
    """Tables of the application's named as threadstore's were before 0010, with the names the
    documented convention gives their keys and indexes (`pk_threads`, `ix_threads_created_at`)."""
    application = sa.MetaData(naming_convention=DOCUMENTED_CONVENTION)
    for name in (table.name.removeprefix(TABLE_PREFIX) for table in metadata.sorted_tables):
        sa.Table(
            name,
            application,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("created_at", sa.Integer, index=True),
        )
    with engine_on_new_database(backend, tmp_path, "shared") as engine:
        migrate.upgrade(engine)

        application.create_all(engine)

        assert set(names_in(engine)) >= set(application.tables) | set(metadata.tables)
