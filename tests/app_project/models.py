"""The application's own tables, on SQLModel's default metadata as an application keeps them."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from threadstore import tables


class Project(SQLModel, table=True):
    __tablename__ = "projects"

    id: int | None = Field(default=None, primary_key=True)
    name: str


class Ticket(SQLModel, table=True):
    """A support ticket whose conversation is a threadstore thread; it goes when the thread goes."""

    __tablename__ = "tickets"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id")
    thread_id: str = Field(
        sa_column=Column(String, ForeignKey(tables.threads.c.id, ondelete="CASCADE"), nullable=False)
    )


class ForumThread(SQLModel, table=True):
    """The application's own `threads` (a forum's), named as threadstore's table was before its
    prefix; SQLModel names its index `ix_threads_created_at`, as threadstore's was too."""

    __tablename__ = "threads"

    id: int | None = Field(default=None, primary_key=True)
    title: str
    created_at: int = Field(index=True)


class ForumMessage(SQLModel, table=True):
    """The application's own `messages`, in its own `threads`."""

    __tablename__ = "messages"

    id: int | None = Field(default=None, primary_key=True)
    thread_id: int = Field(foreign_key="threads.id")
    body: str
