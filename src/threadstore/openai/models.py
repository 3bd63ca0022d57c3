"""SQLModel tables of the OpenAI family. They are the schema; repositories query them with Core.

Timestamps are integer Unix seconds, as the API returns them. Nullability follows the API, not
the seed generator's blanket NOT NULL: a `*_at`, `last_error` or `usage` is null until it applies.
"""

from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, Integer, String, text
from sqlmodel import Field

from threadstore.openai.states import (
    MESSAGE,
    MESSAGE_INCOMPLETE_REASONS,
    REASONING_EFFORTS,
    ROLES,
    RUN,
    RUN_ERROR_CODES,
    RUN_INCOMPLETE_REASONS,
    RUN_STEP,
    STEP_ERROR_CODES,
    STEP_TYPES,
)
from threadstore.schema import ROW_ID, Base, json_column, one_of, row_id, status_checks, table_of

ACTIVE_RUN_STATUSES = ", ".join(f"'{s}'" for s in sorted(RUN.active))


def _fk(target: str, *, ondelete: str | None = None, nullable: bool = False) -> Any:
    return Field(sa_column=Column(String, ForeignKey(target, ondelete=ondelete), nullable=nullable))


def _related(target: str, *, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(ROW_ID, ForeignKey(target), nullable=nullable, unique=True))


def _seconds(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(BigInteger, nullable=nullable))


class AssistantRow(Base, table=True):
    """An assistant. Deleting one keeps a tombstone (`deleted_at`) so that the runs, steps and
    messages that name it keep a valid `assistant_id`."""

    __tablename__ = "threadstore_assistants"
    __table_args__ = (Index(None, "created_at", "id"),)

    id: str = Field(primary_key=True)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    name: str | None = Field(default=None)
    description: str | None = Field(default=None)
    model: str
    instructions: str | None = Field(default=None)
    tools: list[Any] = Field(sa_column=json_column("tools", nullable=False))
    tool_resources: dict[str, Any] | None = Field(default=None, sa_column=json_column("tool_resources", nullable=True))
    metadata_: dict[str, str] = Field(sa_column=json_column("metadata", nullable=False))
    temperature: float | None = Field(default=None)
    top_p: float | None = Field(default=None)
    response_format: Any = Field(default=None, sa_column=json_column("response_format", nullable=True))
    deleted_at: int | None = _seconds()


class ThreadRow(Base, table=True):
    """A conversation thread; deleting it deletes its messages, runs and run steps."""

    __tablename__ = "threadstore_threads"
    __table_args__ = (Index(None, "created_at", "id"),)

    id: str = Field(primary_key=True)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    metadata_: dict[str, str] = Field(sa_column=json_column("metadata", nullable=False))
    tool_resources: dict[str, Any] | None = Field(default=None, sa_column=json_column("tool_resources", nullable=True))


class RunRow(Base, table=True):
    """A run of an assistant on a thread. At most one active run per thread (partial unique index)."""

    __tablename__ = "threadstore_runs"
    __table_args__ = (
        Index(None, "thread_id", "created_at", "id"),
        Index(None, "status", "created_at", "id"),
        Index(
            "uq_threadstore_runs_one_active_per_thread",
            "thread_id",
            unique=True,
            sqlite_where=text(f"status IN ({ACTIVE_RUN_STATUSES})"),
            postgresql_where=text(f"status IN ({ACTIVE_RUN_STATUSES})"),
        ),
        one_of("status", RUN.statuses, "status"),
        one_of("last_error_code", RUN_ERROR_CODES, "last_error_code"),
        one_of("incomplete_reason", RUN_INCOMPLETE_REASONS, "incomplete_reason"),
        one_of("reasoning_effort", REASONING_EFFORTS, "reasoning_effort"),
        *status_checks(RUN),
    )

    id: str = Field(primary_key=True)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    thread_id: str = _fk("threadstore_threads.id", ondelete="CASCADE")
    assistant_id: str = _fk("threadstore_assistants.id")
    status: str
    required_action: dict[str, Any] | None = Field(
        default=None, sa_column=json_column("required_action", nullable=True)
    )
    last_error_code: str | None = Field(default=None)
    last_error_message: str | None = Field(default=None)
    expires_at: int | None = _seconds()
    started_at: int | None = _seconds()
    cancelled_at: int | None = _seconds()
    failed_at: int | None = _seconds()
    completed_at: int | None = _seconds()
    incomplete_reason: str | None = Field(default=None)
    model: str
    instructions: str
    tools: list[Any] = Field(sa_column=json_column("tools", nullable=False))
    metadata_: dict[str, str] = Field(sa_column=json_column("metadata", nullable=False))
    usage_prompt_tokens: int | None = Field(default=None)
    usage_completion_tokens: int | None = Field(default=None)
    usage_total_tokens: int | None = Field(default=None)
    temperature: float | None = Field(default=None)
    top_p: float | None = Field(default=None)
    max_prompt_tokens: int | None = Field(default=None)
    max_completion_tokens: int | None = Field(default=None)
    truncation_strategy: dict[str, Any] = Field(sa_column=json_column("truncation_strategy", nullable=False))
    response_format: Any = Field(sa_column=json_column("response_format", nullable=False))
    tool_choice: Any = Field(sa_column=json_column("tool_choice", nullable=False))
    parallel_tool_calls: bool
    # The create-run request's reasoning_effort and include (migration 0008); null on older runs.
    reasoning_effort: str | None = Field(default=None)
    include: list[str] | None = Field(default=None, sa_column=json_column("include", nullable=True))
    # A worker's claim: `attempt` counts the claims of the run, `lease_expires_at` (Unix
    # microseconds, as LangGraph's) is set while a leased claim holds it. Not API fields.
    attempt: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default=text("0")))
    lease_expires_at: int | None = _seconds()


class MessageRow(Base, table=True):
    """A message in a thread, written by a user or by an assistant during a run."""

    __tablename__ = "threadstore_messages"
    __table_args__ = (
        Index(None, "thread_id", "created_at", "id"),
        # Only messages written by runs: most messages are the user's, and an entry for each of
        # them would be kept up to date on every insert for nothing.
        Index(
            None,
            "run_id",
            "created_at",
            "id",
            sqlite_where=text("run_id IS NOT NULL"),
            postgresql_where=text("run_id IS NOT NULL"),
        ),
        one_of("status", MESSAGE.statuses, "status"),
        one_of("role", ROLES, "role"),
        one_of("incomplete_reason", MESSAGE_INCOMPLETE_REASONS, "incomplete_reason"),
        *status_checks(MESSAGE),
    )

    id: str = Field(primary_key=True)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    thread_id: str = _fk("threadstore_threads.id", ondelete="CASCADE")
    status: str
    incomplete_reason: str | None = Field(default=None)
    completed_at: int | None = _seconds()
    incomplete_at: int | None = _seconds()
    role: str
    content: list[Any] = Field(sa_column=json_column("content", nullable=False))
    assistant_id: str | None = _fk("threadstore_assistants.id", nullable=True)
    run_id: str | None = _fk("threadstore_runs.id", ondelete="SET NULL", nullable=True)
    attachments: list[Any] = Field(sa_column=json_column("attachments", nullable=False))
    metadata_: dict[str, str] = Field(sa_column=json_column("metadata", nullable=False))


class RunStepRow(Base, table=True):
    """A step of a run. As in the seed, `step_details`, `last_error` and `usage` are foreign keys
    to rows of their own tables; `last_error` and `usage` are null until the step has them. Each
    related row belongs to one step (unique) and to the step's run, so deleting the run or the
    thread deletes it too; deleting a step alone deletes its related rows in the same unit."""

    __tablename__ = "threadstore_run_steps"
    __table_args__ = (
        Index(None, "run_id", "created_at", "id"),
        Index(None, "thread_id"),
        one_of("status", RUN_STEP.statuses, "status"),
        one_of("type", STEP_TYPES, "type"),
        *status_checks(RUN_STEP),
    )

    id: str = Field(primary_key=True)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    run_id: str = _fk("threadstore_runs.id", ondelete="CASCADE")
    thread_id: str = _fk("threadstore_threads.id", ondelete="CASCADE")
    assistant_id: str = _fk("threadstore_assistants.id")
    type: str
    status: str
    expired_at: int | None = _seconds()
    cancelled_at: int | None = _seconds()
    failed_at: int | None = _seconds()
    completed_at: int | None = _seconds()
    metadata_: dict[str, str] = Field(sa_column=json_column("metadata", nullable=False))
    step_details: int = _related("threadstore_run_step_details.id", nullable=False)
    last_error: int | None = _related("threadstore_run_step_last_errors.id")
    usage: int | None = _related("threadstore_run_step_usages.id")


class RunStepDetailsRow(Base, table=True):
    """The `step_details` of a run step: the message it created, or its tool calls."""

    __tablename__ = "threadstore_run_step_details"
    __table_args__ = (
        Index(None, "run_id"),
        one_of("type", STEP_TYPES, "type"),
        CheckConstraint(
            "(type = 'message_creation' AND message_id IS NOT NULL AND tool_calls IS NULL)"
            " OR (type = 'tool_calls' AND tool_calls IS NOT NULL AND message_id IS NULL)",
            name="payload_matches_type",
        ),
    )

    id: int | None = row_id()
    run_id: str = _fk("threadstore_runs.id", ondelete="CASCADE")
    type: str
    message_id: str | None = Field(default=None)
    tool_calls: list[Any] | None = Field(default=None, sa_column=json_column("tool_calls", nullable=True))


class RunStepLastErrorRow(Base, table=True):
    """The `last_error` of a failed run step."""

    __tablename__ = "threadstore_run_step_last_errors"
    __table_args__ = (Index(None, "run_id"), one_of("code", STEP_ERROR_CODES, "code"))

    id: int | None = row_id()
    run_id: str = _fk("threadstore_runs.id", ondelete="CASCADE")
    code: str
    message: str


class RunStepUsageRow(Base, table=True):
    """The token `usage` of a run step that has ended."""

    __tablename__ = "threadstore_run_step_usages"
    __table_args__ = (Index(None, "run_id"),)

    id: int | None = row_id()
    run_id: str = _fk("threadstore_runs.id", ondelete="CASCADE")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


assistants = table_of(AssistantRow)
threads = table_of(ThreadRow)
runs = table_of(RunRow)
messages = table_of(MessageRow)
run_steps = table_of(RunStepRow)
run_step_details = table_of(RunStepDetailsRow)
run_step_last_errors = table_of(RunStepLastErrorRow)
run_step_usages = table_of(RunStepUsageRow)
