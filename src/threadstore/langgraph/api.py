"""The objects the LangGraph repositories return, and their API JSON (`to_api()`): the shapes of
`langgraph_sdk.schema.Thread` and `Run`, with times in ISO 8601 with a UTC offset. A run also
carries `kwargs`, as the documented run table does."""

from __future__ import annotations

from dataclasses import dataclass

from threadstore.clock import iso_from_micros
from threadstore.records import Json, Row, row_reader


@dataclass(frozen=True, slots=True)
class LangGraphThread:
    """A LangGraph thread. `created_at` and `updated_at` are Unix microseconds."""

    thread_id: str
    created_at: int
    updated_at: int
    metadata: Json
    status: str
    values: Json | None

    @property
    def id(self) -> str:
        """The thread's id (as `thread_id`), so pages and lists treat every object alike."""
        return self.thread_id

    @classmethod
    def from_row(cls, m: Row) -> LangGraphThread:
        """Build from a row of the langgraph_threads table."""
        return cls(*_THREAD_ARGS(m))

    def to_api(self) -> Json:
        """The API's thread object."""
        return {
            "thread_id": self.thread_id,
            "created_at": iso_from_micros(self.created_at),
            "updated_at": iso_from_micros(self.updated_at),
            "metadata": self.metadata,
            "status": self.status,
            "values": self.values,
            "interrupts": {},
            "extracted": {},
        }


@dataclass(frozen=True, slots=True)
class LangGraphRun:
    """A LangGraph run. `attempt` counts its claims; `lease_expires_at` (Unix microseconds) is set
    while it runs."""

    run_id: str
    thread_id: str
    assistant_id: str
    created_at: int
    updated_at: int
    status: str
    metadata: Json
    kwargs: Json
    multitask_strategy: str
    cancel_reason: str | None
    attempt: int
    lease_expires_at: int | None

    @property
    def id(self) -> str:
        """The run's id (as `run_id`)."""
        return self.run_id

    @classmethod
    def from_row(cls, m: Row) -> LangGraphRun:
        """Build from a row of the langgraph_runs table."""
        return cls(*_RUN_ARGS(m))

    def to_api(self) -> Json:
        """The API's run object, with `kwargs`."""
        return {
            "run_id": self.run_id,
            "thread_id": self.thread_id,
            "assistant_id": self.assistant_id,
            "created_at": iso_from_micros(self.created_at),
            "updated_at": iso_from_micros(self.updated_at),
            "status": self.status,
            "metadata": self.metadata,
            "kwargs": self.kwargs,
            "multitask_strategy": self.multitask_strategy,
            "cancel_reason": self.cancel_reason,
        }


_THREAD_ARGS = row_reader(LangGraphThread)
_RUN_ARGS = row_reader(LangGraphRun)
