"""The lifecycles of OpenAI runs, run steps and messages, as data (DESIGN.md, "Lifecycles")."""

from __future__ import annotations

from threadstore.lifecycle import Machine

RUN = Machine(
    kind="run",
    initial="queued",
    transitions={
        "queued": frozenset({"in_progress", "cancelled", "failed", "expired"}),
        "in_progress": frozenset(
            {"requires_action", "cancelling", "completed", "failed", "incomplete", "expired"}
        ),
        "requires_action": frozenset({"queued", "cancelled", "failed", "expired"}),
        "cancelling": frozenset({"cancelled", "completed", "failed", "incomplete", "expired"}),
    },
    stamps={
        "in_progress": "started_at",
        "cancelled": "cancelled_at",
        "failed": "failed_at",
        "completed": "completed_at",
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
