"""threadstore's tables as SQLAlchemy Core objects, for an application that shares its database.

A table of the application can hold a foreign key to one of threadstore's by naming the column
object (a string such as ``"threadstore_threads.id"`` resolves only within one MetaData, and threadstore's
tables live in a MetaData of their own, `metadata`)::

    from sqlalchemy import Column, ForeignKey, String
    from sqlmodel import Field, SQLModel
    from threadstore import tables

    class Ticket(SQLModel, table=True):
        id: int | None = Field(default=None, primary_key=True)
        thread_id: str = Field(sa_column=Column(String, ForeignKey(tables.threads.c.id, ondelete="CASCADE")))
"""

from __future__ import annotations

from threadstore.events.models import events
from threadstore.langgraph.models import runs as langgraph_runs
from threadstore.langgraph.models import thread_metadata as langgraph_thread_metadata
from threadstore.langgraph.models import threads as langgraph_threads
from threadstore.openai.models import (
    assistants,
    messages,
    run_step_details,
    run_step_last_errors,
    run_step_usages,
    run_steps,
    runs,
    threads,
)
from threadstore.responses.models import conversation_items, conversations, response_items, responses
from threadstore.schema import metadata
from threadstore.versions import VERSION_TABLE

__all__ = [
    "VERSION_TABLE",
    "assistants",
    "conversation_items",
    "conversations",
    "events",
    "langgraph_runs",
    "langgraph_thread_metadata",
    "langgraph_threads",
    "messages",
    "metadata",
    "names",
    "response_items",
    "responses",
    "run_step_details",
    "run_step_last_errors",
    "run_step_usages",
    "run_steps",
    "runs",
    "threads",
]


def names() -> frozenset[str]:
    """The names of every table threadstore creates, its version table included."""
    return frozenset(metadata.tables) | {VERSION_TABLE}
