"""The lifecycle of a response, as data (README.md, "Responses and Conversations")."""

from __future__ import annotations

from threadstore.lifecycle import FieldRule, Machine

_TRANSITIONS = {
    "queued": frozenset({"in_progress", "cancelled", "failed"}),
    "in_progress": frozenset({"completed", "failed", "incomplete", "cancelled"}),
}
_TERMINAL = frozenset({"completed", "failed", "incomplete", "cancelled"})
_ACTIVE = frozenset(_TRANSITIONS)

RESPONSE = Machine(
    kind="response",
    initial="queued",
    transitions=_TRANSITIONS,
    stamps={"completed": "completed_at"},
    # A background response waits in the queue for a worker; any other is created running, by
    # the server that answers the request.
    created_in=frozenset({"queued", "in_progress"}),
    verbs={
        "start": {"in_progress": frozenset({"queued"})},
        "claim_next": {"in_progress": frozenset({"queued"})},
        "complete": {"completed": frozenset({"in_progress"})},
        "fail": {"failed": _ACTIVE},
        "mark_incomplete": {"incomplete": frozenset({"in_progress"})},
        "cancel": {"cancelled": _ACTIVE},
    },
    fields={
        "error_code": FieldRule(frozenset({"failed"}), required=True),
        "incomplete_reason": FieldRule(frozenset({"incomplete"}), required=True),
        "usage": FieldRule(_TERMINAL),
        "completed_at": FieldRule(frozenset({"completed"})),
    },
)

# The statuses in which a response appends to its conversation: at most one per conversation.
APPENDING = "in_progress"

ERROR_CODES = (
    "server_error",
    "rate_limit_exceeded",
    "invalid_prompt",
    "vector_store_timeout",
    "invalid_image",
    "invalid_image_format",
    "invalid_base64_image",
    "invalid_image_url",
    "image_too_large",
    "image_too_small",
    "image_parse_error",
    "image_content_policy_violation",
    "invalid_image_mode",
    "image_file_too_large",
    "unsupported_image_media_type",
    "empty_image_file",
    "failed_to_download_image",
    "image_file_not_found",
)
INCOMPLETE_REASONS = ("max_output_tokens", "content_filter")
TRUNCATIONS = ("auto", "disabled")
ITEM_KINDS = ("input", "output")

# What an output item still in progress becomes when its response ends.
ITEM_STATUS_WHEN_RESPONSE_ENDS = {
    "completed": "completed",
    "failed": "incomplete",
    "incomplete": "incomplete",
    "cancelled": "incomplete",
}
