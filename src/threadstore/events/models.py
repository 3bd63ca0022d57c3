"""The events table. One row per event, in the order followers must see them (`id`)."""

from typing import Any

from sqlalchemy import BigInteger, Column, Index, String
from sqlmodel import Field

from threadstore.schema import Base, json_column, row_id, table_of


class EventRow(Base, table=True):
    """An event of a thread (OpenAI or LangGraph), and of a run when it has one.

    `thread_id` is not a foreign key: the two families keep their threads in tables of their
    own. A thread's or run's delete deletes its events in the same unit of work.

    One index: a run's events are read through its thread's, which carries `run_id` so that the
    other runs' events are passed over without a visit to their rows. An index of their own
    would cost every unit that writes events one more page in its commit.
    """

    __tablename__ = "threadstore_events"
    __table_args__ = (Index(None, "thread_id", "id", "run_id"),)

    id: int | None = row_id()
    event: str
    data: dict[str, Any] = Field(sa_column=json_column("data", nullable=False))
    thread_id: str = Field(sa_column=Column(String, nullable=False))
    run_id: str | None = Field(default=None)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))


events = table_of(EventRow)
