"""The values threadstore's enum-like arguments take, as `Literal` types, and the content parts a
message is written with, as TypedDicts: mypy and editors then catch ``order="ascending"``.

The allowed values themselves are data in `openai/states.py` and `langgraph/states.py`, which
the store checks at run time; `tests/test_types.py` keeps each type here equal to its data.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypeAlias, TypedDict

from threadstore.openai.states import ReasoningEffort, RunStepInclude

__all__ = [
    "CancelAction",
    "FinishStatus",
    "IfExists",
    "ImageFileContentPart",
    "ImageURLContentPart",
    "LangGraphRunStatus",
    "LangGraphThreadStatus",
    "MessageContentPart",
    "MessageIncompleteReason",
    "MessageStatus",
    "MultitaskStrategy",
    "NewMessageStatus",
    "Order",
    "ReasoningEffort",
    "RefusalContentPart",
    "Role",
    "RunErrorCode",
    "RunIncompleteReason",
    "RunStatus",
    "RunStepInclude",
    "RunStepStatus",
    "SortOrder",
    "StepErrorCode",
    "TextContentPart",
    "ThreadSortField",
]

Order: TypeAlias = Literal["asc", "desc"]
SortOrder: TypeAlias = Literal["asc", "desc"]

# OpenAI family
Role: TypeAlias = Literal["user", "assistant"]
MessageStatus: TypeAlias = Literal["in_progress", "completed", "incomplete"]
NewMessageStatus: TypeAlias = Literal["completed", "in_progress"]  # what messages.create takes
MessageIncompleteReason: TypeAlias = Literal[
    "content_filter", "max_tokens", "run_cancelled", "run_expired", "run_failed"
]
RunStatus: TypeAlias = Literal[
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
]
RunStepStatus: TypeAlias = Literal["in_progress", "cancelled", "failed", "completed", "expired"]
RunErrorCode: TypeAlias = Literal["server_error", "rate_limit_exceeded", "invalid_prompt"]
StepErrorCode: TypeAlias = Literal["server_error", "rate_limit_exceeded"]
RunIncompleteReason: TypeAlias = Literal["max_completion_tokens", "max_prompt_tokens"]

# LangGraph family
LangGraphThreadStatus: TypeAlias = Literal["idle", "busy", "interrupted", "error"]
LangGraphRunStatus: TypeAlias = Literal["pending", "running", "success", "error", "timeout", "interrupted"]
FinishStatus: TypeAlias = Literal["success", "error", "timeout", "interrupted"]
MultitaskStrategy: TypeAlias = Literal["reject", "interrupt", "rollback", "enqueue"]
CancelAction: TypeAlias = Literal["interrupt", "rollback"]
IfExists: TypeAlias = Literal["raise", "do_nothing"]
ThreadSortField: TypeAlias = Literal["thread_id", "status", "created_at", "updated_at"]


# A message's content parts, as the Assistants API takes them.
class _Text(TypedDict):
    value: str
    annotations: NotRequired[list[dict[str, object]]]


class TextContentPart(TypedDict):
    """``{"type": "text", "text": "Hello"}`` (or the stored shape, with value and annotations)."""

    type: Literal["text"]
    text: str | _Text


class _ImageFile(TypedDict):
    file_id: str
    detail: NotRequired[Literal["auto", "low", "high"]]


class ImageFileContentPart(TypedDict):
    """``{"type": "image_file", "image_file": {"file_id": ...}}``."""

    type: Literal["image_file"]
    image_file: _ImageFile


class _ImageURL(TypedDict):
    url: str
    detail: NotRequired[Literal["auto", "low", "high"]]


class ImageURLContentPart(TypedDict):
    """``{"type": "image_url", "image_url": {"url": ...}}``."""

    type: Literal["image_url"]
    image_url: _ImageURL


class RefusalContentPart(TypedDict):
    """``{"type": "refusal", "refusal": "..."}``."""

    type: Literal["refusal"]
    refusal: str


MessageContentPart: TypeAlias = TextContentPart | ImageFileContentPart | ImageURLContentPart | RefusalContentPart
