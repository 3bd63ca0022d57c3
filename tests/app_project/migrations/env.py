"""The application's Alembic environment: its own metadata, threadstore's tables filtered out."""

import tests.app_project.models  # noqa: F401  (registers the application's tables)
from alembic import context
from sqlmodel import SQLModel

import threadstore.alembic

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    include_name=threadstore.alembic.include_name,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
