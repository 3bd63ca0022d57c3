"""The lifecycles of OpenAI runs, run steps and messages, as data (DESIGN.md, "Lifecycles")."""

from __future__ import annotations

from threadstore.lifecycle import Machine

_RUN_TRANSITIONS = {
    "queued": frozenset({"in_progress", "cancelled", "failed", "expired"}),
    "in_progress": frozenset({"requires_action", "cancelling", "completed", "failed", "incomplete", "expired"}),
    "requires_action": frozenset({"queued", "cancelled", "failed", "expired"}),
    "cancelling": frozenset({"cancelled", "completed", "failed", "incomplete", "expired"}),
}
_RUN_STATUSES = {"queued", *(target for targets in _RUN_TRANSITIONS.values() for target in targets)}


def _run_clears(status: str) -> tuple[str, ...]:
    # required_action exists only in requires_action; expires_at is cleared by every terminal
    # status but expired, which keeps the deadline it missed.
    cleared = [] if status == "requires_action" else ["required_action"]
    if status not in _RUN_TRANSITIONS and status != "expired":
        cleared.append("expires_at")
    return tuple(cleared)


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
    clears={status: _run_clears(status) for status in _RUN_STATUSES},
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
)

MESSAGE = Machine(
    kind="message",
    initial="in_progress",
    transitions={"in_progress": frozenset({"completed", "incomplete"})},
    stamps={"completed": "completed_at", "incomplete": "incomplete_at"},
)

ROLES = ("user", "assistant")
STEP_TYPES = ("message_creation", "tool_calls")
TOOL_TYPES = ("code_interpreter", "file_search", "function")
RUN_ERROR_CODES = ("server_error", "rate_limit_exceeded", "invalid_prompt")
STEP_ERROR_CODES = ("server_error", "rate_limit_exceeded")
RUN_INCOMPLETE_REASONS = ("max_completion_tokens", "max_prompt_tokens")
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
