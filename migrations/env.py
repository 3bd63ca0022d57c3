"""Alembic environment for threadstore.

Used by `threadstore migrate` / `Store.migrate()` (which pass a connection in) and by
`alembic upgrade head` from a checkout (URL from `-x url=...`, $THREADSTORE_URL, or alembic.ini;
`-x schema=...` for a PostgreSQL schema). threadstore records its revision in a version table
of its own, so an application's Alembic history in the same database is never mixed with it.
"""

import logging
import os
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection

import threadstore
import threadstore.alembic
from threadstore.db import create_engine, in_schema, normalize_url, unit_of_work
from threadstore.tables import metadata
from threadstore.versions import VERSION_TABLE, adopt_shared_version

config = context.config
if config.config_file_name is not None:  # the alembic command: log each revision it runs
    fileConfig(config.config_file_name, disable_existing_loggers=False)
    _checkout = Path(config.config_file_name).resolve().parent
    if not Path(threadstore.__file__).resolve().is_relative_to(_checkout):
        # `alembic check` / `revision --autogenerate` compare the models of the threadstore that is
        # imported: from another place than this checkout, they are not the ones being edited.
        logging.getLogger("alembic").warning(
            "threadstore is imported from %s, not from this checkout: install it editable "
            "(pip install -e .) to compare this checkout's models",
            Path(threadstore.__file__).parent,
        )


def _url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("THREADSTORE_URL")
        or config.get_main_option("sqlalchemy.url")
        or "sqlite:///threadstore.db"
    )


def _is_ours(revision: str) -> bool:
    try:
        return context.script.get_revision(revision) is not None
    except CommandError:
        return False


def _run(connection: Connection) -> None:
    adopt_shared_version(connection, _is_ours)
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=threadstore.alembic.include_threadstore_name,
        include_object=threadstore.alembic.built_on(connection.dialect.name),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, version_table=VERSION_TABLE, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    _run(given)
else:
    schema = context.get_x_argument(as_dictionary=True).get("schema")
    engine = create_engine(in_schema(normalize_url(_url()), schema))
    with unit_of_work(engine, write=True) as connection:
        if schema:
            connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")  # checked by in_schema
        _run(connection)
    engine.dispose()
