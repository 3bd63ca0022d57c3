"""SQLModel tables of the LangGraph family. Times are Unix microseconds (exact and sortable on
every backend); the API shows them as ISO 8601 with a UTC offset."""

from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, PrimaryKeyConstraint, Sequence, String, text
from sqlmodel import Field

from threadstore.langgraph.states import MULTITASK_STRATEGIES, RUN, THREAD_STATUSES
from threadstore.ordering import sequence_name
from threadstore.schema import Base, json_column, metadata, one_of, status_checks, table_of


def _micros() -> Any:
    return Field(sa_column=Column(BigInteger, nullable=False))


class LangGraphThreadRow(Base, table=True):
    """A LangGraph thread. Its status is derived from its runs in the transaction that changes them."""

    __tablename__ = "threadstore_langgraph_threads"
    __table_args__ = (
        Index(None, "created_at", "thread_id"),
        Index(None, "status", "created_at"),
        # Search by metadata (`@>`) on PostgreSQL, for filters without a scalar entry (those go
        # through LangGraphThreadMetadataRow, on both backends).
        Index(
            "ix_threadstore_langgraph_threads_metadata",
            "metadata",
            postgresql_using="gin",
            postgresql_ops={"metadata": "jsonb_path_ops"},
        ).ddl_if(dialect="postgresql"),
        one_of("status", THREAD_STATUSES, "status"),
    )

    thread_id: str = Field(primary_key=True)
    created_at: int = _micros()
    updated_at: int = _micros()
    metadata_: dict[str, Any] = Field(sa_column=json_column("metadata", nullable=False))
    status: str
    values: dict[str, Any] | None = Field(default=None, sa_column=json_column("values", nullable=True))


class LangGraphThreadMetadataRow(Base, table=True):
    """The index of thread metadata (langgraph/metadata_index.py): one row for each top-level key
    of a thread whose value is a scalar, the value as a token that equal JSON values share, with
    the thread's creation time so that a user's newest threads are read in key order. Written and
    deleted with the thread, in its transaction.

    The primary key is the whole row, in the order a search reads it: the table is one B-tree
    (on SQLite WITHOUT ROWID; on PostgreSQL a heap beside it), so that a thread create writes one
    index entry a key and dirties one page more, not two. So there is no foreign key to the
    thread either: its ON DELETE CASCADE would need a second index, by thread. A row that
    outlives its thread (one deleted by plain SQL from outside) finds nothing: a search meets the
    thread by id and creation time (langgraph/threads.py, _narrowed)."""

    __tablename__ = "threadstore_langgraph_thread_metadata"
    __table_args__ = (PrimaryKeyConstraint("key", "value", "created_at", "thread_id"), {"sqlite_with_rowid": False})

    thread_id: str = Field(sa_column=Column(String, nullable=False))
    key: str = Field(sa_column=Column(String, nullable=False))
    value: str = Field(sa_column=Column(String, nullable=False))
    created_at: int = _micros()


class LangGraphRunRow(Base, table=True):
    """A LangGraph run. At most one running run per thread (partial unique index). A claim sets
    `lease_expires_at` and raises `attempt`; a worker proves it still owns the run by its attempt."""

    __tablename__ = "threadstore_langgraph_runs"
    __table_args__ = (
        Index(None, "thread_id", "created_at"),
        Index(None, "status", "seq"),  # claims: the oldest pending run
        Index(None, "seq"),  # SQLite's next number (ordering.next_in_order)
        Index(
            "uq_threadstore_langgraph_runs_one_running_per_thread",
            "thread_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        one_of("status", RUN.statuses, "status"),
        one_of("multitask_strategy", MULTITASK_STRATEGIES, "multitask_strategy"),
        *status_checks(RUN),
    )

    run_id: str = Field(primary_key=True)
    thread_id: str = Field(
        sa_column=Column(
            String, ForeignKey("threadstore_langgraph_threads.thread_id", ondelete="CASCADE"), nullable=False
        )
    )
    assistant_id: str
    created_at: int = _micros()
    updated_at: int = _micros()
    status: str
    metadata_: dict[str, Any] = Field(sa_column=json_column("metadata", nullable=False))
    kwargs_: dict[str, Any] = Field(sa_column=json_column("kwargs", nullable=False))
    multitask_strategy: str
    cancel_reason: str | None = Field(default=None)
    attempt: int = Field(default=0)
    lease_expires_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # The run's place in the database's order (RUN.ordered): numbered on create, and again when
    # the run ends. Not an API field.
    seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default=text("0")))


threads = table_of(LangGraphThreadRow)
thread_metadata = table_of(LangGraphThreadMetadataRow)
runs = table_of(LangGraphRunRow)
assert RUN.ordered is not None
ORDER = runs.c[RUN.ordered]
# PostgreSQL's numbers for ORDER (ordering.next_in_order); SQLite needs none.
ORDER_SEQUENCE = Sequence(sequence_name(ORDER), metadata=metadata)
