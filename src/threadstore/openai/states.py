"""The lifecycles of OpenAI runs, run steps and messages, as data (README.md, "Lifecycles")."""

from __future__ import annotations

from typing import Literal, get_args

from threadstore.lifecycle import FieldRule, Machine

_RUN_TRANSITIONS = {
    "queued": frozenset({"in_progress", "cancelled", "failed", "expired"}),
    "in_progress": frozenset({"requires_action", "cancelling", "completed", "failed", "incomplete", "expired"}),
    "requires_action": frozenset({"queued", "cancelled", "failed", "expired"}),
    "cancelling": frozenset({"cancelled", "completed", "failed", "incomplete", "expired"}),
}
_RUN_TERMINAL = frozenset(t for targets in _RUN_TRANSITIONS.values() for t in targets) - set(_RUN_TRANSITIONS)
_RUN_ACTIVE = frozenset(_RUN_TRANSITIONS)
_WORKING = frozenset({"in_progress", "cancelling"})  # a worker holds the run


def _verb(target: str, *sources: str) -> dict[str, frozenset[str]]:
    return {target: frozenset(sources)}


RUN = Machine(
    kind="run",
    initial="queued",
    transitions=_RUN_TRANSITIONS,
    stamps={
        "in_progress": "started_at",
        "cancelled": "cancelled_at",
        "failed": "failed_at",
        "completed": "completed_at",
    },
    keep_first=frozenset({"started_at"}),
    verbs={
        "start": _verb("in_progress", "queued"),
        "claim_next": _verb("in_progress", "queued"),
        "require_action": _verb("requires_action", "in_progress"),
        "submit_tool_outputs": _verb("queued", "requires_action"),
        # Nothing is running a queued run or one waiting for outputs: it stops at once. A run in
        # progress is stopped by its worker, which acknowledges with mark_cancelled.
        "cancel": {"cancelled": frozenset({"queued", "requires_action"}), "cancelling": frozenset({"in_progress"})},
        "mark_cancelled": _verb("cancelled", "cancelling"),
        "complete": {"completed": _WORKING},
        "fail": {"failed": _RUN_ACTIVE},
        "mark_incomplete": {"incomplete": _WORKING},
        "expire": {"expired": _RUN_ACTIVE},
        "expire_overdue": {"expired": _RUN_ACTIVE},
    },
    fields={
        "required_action": FieldRule(frozenset({"requires_action"}), required=True),
        "last_error_code": FieldRule(frozenset({"failed"}), required=True),
        "incomplete_reason": FieldRule(frozenset({"incomplete"})),
        "usage_total_tokens": FieldRule(_RUN_TERMINAL),
        # A deadline is kept by the active statuses and by expired, which records the one missed.
        "expires_at": FieldRule(frozenset({*_RUN_TRANSITIONS, "expired"})),
    },
)

RUN_STEP = Machine(
    kind="run step",
    initial="in_progress",
    transitions={"in_progress": frozenset({"completed", "failed", "cancelled", "expired"})},
    stamps={
        "completed": "completed_at",
        "failed": "failed_at",
        "cancelled": "cancelled_at",
        "expired": "expired_at",
    },
    # Not required: the cascade of a run's end moves its steps in one statement, then gives each
    # step it failed its own copy of the run's error.
    fields={
        "last_error": FieldRule(frozenset({"failed"})),
        "usage": FieldRule(frozenset({"completed", "failed", "cancelled", "expired"})),
    },
    verbs={
        "complete": _verb("completed", "in_progress"),
        "fail": _verb("failed", "in_progress"),
        "cancel": _verb("cancelled", "in_progress"),
        "expire": _verb("expired", "in_progress"),
        # The cascade when the step's run ends (STEP_STATUS_WHEN_RUN_ENDS).
        "end_with_run": {
            status: frozenset({"in_progress"}) for status in ("completed", "cancelled", "failed", "expired")
        },
    },
)

MESSAGE = Machine(
    kind="message",
    initial="in_progress",
    transitions={"in_progress": frozenset({"completed", "incomplete"})},
    stamps={"completed": "completed_at", "incomplete": "incomplete_at"},
    created_in=frozenset({"in_progress", "completed"}),
    verbs={
        "complete": _verb("completed", "in_progress"),
        "mark_incomplete": _verb("incomplete", "in_progress"),
        # The cascade when the message's run ends (MESSAGE_END_WHEN_RUN_ENDS).
        "end_with_run": {"completed": frozenset({"in_progress"}), "incomplete": frozenset({"in_progress"})},
    },
    fields={
        "incomplete_reason": FieldRule(frozenset({"incomplete"}), required=True),
        "completed_at": FieldRule(frozenset({"completed"})),
        "incomplete_at": FieldRule(frozenset({"incomplete"})),
    },
)

ROLES = ("user", "assistant")
STEP_TYPES = ("message_creation", "tool_calls")
TOOL_TYPES = ("code_interpreter", "file_search", "function")
RUN_ERROR_CODES = ("server_error", "rate_limit_exceeded", "invalid_prompt")
STEP_ERROR_CODES = ("server_error", "rate_limit_exceeded")
RUN_INCOMPLETE_REASONS = ("max_completion_tokens", "max_prompt_tokens")
# Create-run request options (openai's run_create_params: ReasoningEffort, RunStepInclude).
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
RunStepInclude = Literal["step_details.tool_calls[*].file_search.results[*].content"]
REASONING_EFFORTS: tuple[ReasoningEffort, ...] = get_args(ReasoningEffort)
RUN_STEP_INCLUDES: tuple[RunStepInclude, ...] = get_args(RunStepInclude)
MESSAGE_INCOMPLETE_REASONS = ("content_filter", "max_tokens", "run_cancelled", "run_expired", "run_failed")

# When a run ends, its in-progress steps take the status that matches, and its in-progress
# messages complete or become incomplete for the reason given here.
STEP_STATUS_WHEN_RUN_ENDS = {
    "completed": "completed",
    "incomplete": "completed",
    "cancelled": "cancelled",
    "failed": "failed",
    "expired": "expired",
}
MESSAGE_END_WHEN_RUN_ENDS = {
    "completed": ("completed", None),
    "incomplete": ("incomplete", "max_tokens"),
    "cancelled": ("incomplete", "run_cancelled"),
    "failed": ("incomplete", "run_failed"),
    "expired": ("incomplete", "run_expired"),
}
