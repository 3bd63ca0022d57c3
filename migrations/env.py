"""Alembic environment for threadstore.

Used by `threadstore migrate` / `Store.migrate()` (which pass a connection in) and by
`alembic upgrade head` from a checkout (URL from `-x url=...`, $THREADSTORE_URL, or alembic.ini).
"""

import os

from alembic import context
from sqlalchemy.engine import Connection

import threadstore.events.models  # registers the tables
import threadstore.langgraph.models
import threadstore.openai.models  # noqa: F401
from threadstore.db import create_engine, unit_of_work
from threadstore.schema import metadata

config = context.config


def _url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("THREADSTORE_URL")
        or config.get_main_option("sqlalchemy.url")
        or "sqlite:///threadstore.db"
    )


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    _run(given)
else:
    engine = create_engine(_url())
    with unit_of_work(engine, write=True) as connection:
        _run(connection)
    engine.dispose()
