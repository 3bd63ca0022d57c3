"""The objects the OpenAI repositories return, and their exact API JSON (`to_api()`).

Each is a frozen, detached value: nothing is loaded after the transaction that read it ended.
`from_row` reads one column per field, named as the field (`records.row_reader`); the few fields
built from several columns (a last error, a usage, a step's details) say how below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from threadstore.records import Json, Row, row_reader


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of a run or run step that has ended."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    def to_api(self) -> Json:
        """The API's usage object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class LastError:
    """Why a run or run step failed."""

    code: str
    message: str

    def to_api(self) -> Json:
        """The API's last_error object."""
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class Assistant:
    """An assistant (`asst_…`)."""

    id: str
    created_at: int
    name: str | None
    description: str | None
    model: str
    instructions: str | None
    tools: list[Json]
    tool_resources: Json | None
    metadata: dict[str, str]
    temperature: float | None
    top_p: float | None
    response_format: Any

    @classmethod
    def from_row(cls, m: Row) -> Assistant:
        """Build from a row of the assistants table."""
        return cls(*_ASSISTANT_ARGS(m))

    def to_api(self) -> Json:
        """The API's assistant object."""
        return {
            "id": self.id,
            "object": "assistant",
            "created_at": self.created_at,
            "name": self.name,
            "description": self.description,
            "model": self.model,
            "instructions": self.instructions,
            "tools": self.tools,
            "tool_resources": self.tool_resources,
            "metadata": self.metadata,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "response_format": self.response_format,
        }


@dataclass(frozen=True, slots=True)
class Thread:
    """A thread (`thread_…`)."""

    id: str
    created_at: int
    metadata: dict[str, str]
    tool_resources: Json | None

    @classmethod
    def from_row(cls, m: Row) -> Thread:
        """Build from a row of the threads table."""
        return cls(*_THREAD_ARGS(m))

    def to_api(self) -> Json:
        """The API's thread object."""
        return {
            "id": self.id,
            "object": "thread",
            "created_at": self.created_at,
            "metadata": self.metadata,
            "tool_resources": self.tool_resources,
        }


@dataclass(frozen=True, slots=True)
class Message:
    """A message (`msg_…`)."""

    id: str
    created_at: int
    thread_id: str
    status: str
    incomplete_reason: str | None
    completed_at: int | None
    incomplete_at: int | None
    role: str
    content: list[Json]
    assistant_id: str | None
    run_id: str | None
    attachments: list[Json]
    metadata: dict[str, str]

    @classmethod
    def from_row(cls, m: Row) -> Message:
        """Build from a row of the messages table."""
        return cls(*_MESSAGE_ARGS(m))

    @property
    def incomplete_details(self) -> Json | None:
        """`{"reason": ...}` while incomplete, else None."""
        return None if self.incomplete_reason is None else {"reason": self.incomplete_reason}

    def to_api(self, version: Literal["v2", "v1"] = "v2") -> Json:
        """The API's message object: v2 with `attachments`, or v1 with `file_ids`."""
        shape: Json = {
            "id": self.id,
            "object": "thread.message",
            "created_at": self.created_at,
            "thread_id": self.thread_id,
            "status": self.status,
            "incomplete_details": self.incomplete_details,
            "completed_at": self.completed_at,
            "incomplete_at": self.incomplete_at,
            "role": self.role,
            "content": self.content,
            "assistant_id": self.assistant_id,
            "run_id": self.run_id,
        }
        if version == "v1":
            shape["file_ids"] = [a["file_id"] for a in self.attachments if a.get("file_id")]
        else:
            shape["attachments"] = self.attachments
        shape["metadata"] = self.metadata
        return shape


@dataclass(frozen=True, slots=True)
class Run:
    """A run (`run_…`)."""

    id: str
    created_at: int
    thread_id: str
    assistant_id: str
    status: str
    required_action: Json | None
    last_error: LastError | None
    expires_at: int | None
    started_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    incomplete_reason: str | None
    model: str
    instructions: str
    tools: list[Json]
    metadata: dict[str, str]
    usage: Usage | None
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: Json
    response_format: Any
    tool_choice: Any
    parallel_tool_calls: bool
    # Request options the API's run object does not show (to_api keeps its exact shape): the
    # worker that runs the model reads them here.
    reasoning_effort: str | None
    include: list[str] | None

    @classmethod
    def from_row(cls, m: Row) -> Run:
        """Build from a row of the runs table (last_error_* and usage_* make the nested objects)."""
        return cls(*_RUN_ARGS(m))

    @property
    def incomplete_details(self) -> Json | None:
        """`{"reason": ...}` while incomplete, else None."""
        return {"reason": self.incomplete_reason} if self.status == "incomplete" else None

    def to_api(self) -> Json:
        """The API's run object."""
        return {
            "id": self.id,
            "object": "thread.run",
            "created_at": self.created_at,
            "thread_id": self.thread_id,
            "assistant_id": self.assistant_id,
            "status": self.status,
            "required_action": self.required_action,
            "last_error": None if self.last_error is None else self.last_error.to_api(),
            "expires_at": self.expires_at,
            "started_at": self.started_at,
            "cancelled_at": self.cancelled_at,
            "failed_at": self.failed_at,
            "completed_at": self.completed_at,
            "incomplete_details": self.incomplete_details,
            "model": self.model,
            "instructions": self.instructions,
            "tools": self.tools,
            "metadata": self.metadata,
            "usage": None if self.usage is None else self.usage.to_api(),
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_prompt_tokens": self.max_prompt_tokens,
            "max_completion_tokens": self.max_completion_tokens,
            "truncation_strategy": self.truncation_strategy,
            "response_format": self.response_format,
            "tool_choice": self.tool_choice,
            "parallel_tool_calls": self.parallel_tool_calls,
        }


@dataclass(frozen=True, slots=True)
class RunStep:
    """A run step (`step_…`), with its details, last error and usage from their tables."""

    id: str
    created_at: int
    run_id: str
    thread_id: str
    assistant_id: str
    type: str
    status: str
    step_details: Json
    last_error: LastError | None
    usage: Usage | None
    expired_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    metadata: dict[str, str]

    @classmethod
    def from_row(cls, m: Row) -> RunStep:
        """Build from a row of run_steps joined with its details, last error and usage."""
        return cls(*_RUN_STEP_ARGS(m))

    def to_api(self) -> Json:
        """The API's run step object."""
        return {
            "id": self.id,
            "object": "thread.run.step",
            "created_at": self.created_at,
            "assistant_id": self.assistant_id,
            "thread_id": self.thread_id,
            "run_id": self.run_id,
            "type": self.type,
            "status": self.status,
            "step_details": self.step_details,
            "last_error": None if self.last_error is None else self.last_error.to_api(),
            "expired_at": self.expired_at,
            "cancelled_at": self.cancelled_at,
            "failed_at": self.failed_at,
            "completed_at": self.completed_at,
            "metadata": self.metadata,
            "usage": None if self.usage is None else self.usage.to_api(),
        }


def _last_error(code: str, message: str) -> Callable[[Row], LastError | None]:
    """Build a LastError from the columns `code` and `message`, or None when there is no code."""

    def build(m: Row) -> LastError | None:
        value = m[code]
        return None if value is None else LastError(value, m[message])

    return build


def _usage(prompt: str, completion: str, total: str) -> Callable[[Row], Usage | None]:
    """Build a Usage from the three token columns, or None when there is no total."""

    def build(m: Row) -> Usage | None:
        value = m[total]
        return None if value is None else Usage(m[prompt], m[completion], value)

    return build


def _step_details(m: Row) -> Json:
    """A run step's step_details from its type and the column of that type's details."""
    if m["type"] == "message_creation":
        return {"type": "message_creation", "message_creation": {"message_id": m["message_id"]}}
    return {"type": "tool_calls", "tool_calls": m["tool_calls"]}


_ASSISTANT_ARGS = row_reader(Assistant)
_THREAD_ARGS = row_reader(Thread)
_MESSAGE_ARGS = row_reader(Message)
_RUN_ARGS = row_reader(
    Run,
    {
        "last_error": _last_error("last_error_code", "last_error_message"),
        "usage": _usage("usage_prompt_tokens", "usage_completion_tokens", "usage_total_tokens"),
    },
)
_RUN_STEP_ARGS = row_reader(
    RunStep,
    {
        "step_details": _step_details,
        "last_error": _last_error("error_code", "error_message"),
        "usage": _usage("prompt_tokens", "completion_tokens", "total_tokens"),
    },
)


@dataclass(frozen=True, slots=True)
class Deleted:
    """The API's answer to a delete: `{"id": ..., "object": "thread.deleted", "deleted": true}`."""

    id: str
    object: str

    def to_api(self) -> Json:
        """The API's deletion status object."""
        return {"id": self.id, "object": self.object, "deleted": True}
