"""Items (messages, function calls and their outputs, reasoning, ...): the item types the API
defines, as data, and the check that turns a caller's item into its stored JSON.

Each type names its id prefix, the fields an item of it must have, and the statuses it may be
in (None for a type without a status). A message's content given as a string becomes one text
part; an item given without an id gets a new one with its type's prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from threadstore.errors import ValidationError
from threadstore.ids import new_id
from threadstore.records import Json, Row
from threadstore.validation import check_choice, check_list, check_mapping, check_string

MAX_ITEMS_PER_CALL = 20

_STEPS = frozenset({"in_progress", "completed", "incomplete"})
_SEARCHES = frozenset({"in_progress", "searching", "completed", "incomplete", "failed"})


@dataclass(frozen=True)
class ItemType:
    """One item type: its ids' prefix, the fields it requires besides id, type and status, and
    the statuses it may be in (None: it has no status)."""

    prefix: str
    required: tuple[str, ...]
    statuses: frozenset[str] | None
    required_set: frozenset[str] = field(init=False)  # `required`, for one subset test per item

    def __post_init__(self) -> None:
        object.__setattr__(self, "required_set", frozenset(self.required))


ITEM_TYPES: Mapping[str, ItemType] = {
    "message": ItemType("msg", ("role", "content"), _STEPS),
    "function_call": ItemType("fc", ("call_id", "name", "arguments"), _STEPS),
    "function_call_output": ItemType("fco", ("call_id", "output"), _STEPS),
    "reasoning": ItemType("rs", ("summary",), _STEPS),
    "file_search_call": ItemType("fs", ("queries",), _SEARCHES),
    "web_search_call": ItemType("ws", ("action",), _SEARCHES),
    "image_generation_call": ItemType("ig", (), frozenset({"in_progress", "completed", "generating", "failed"})),
    "computer_call": ItemType("cu", ("call_id", "pending_safety_checks"), _STEPS),
    "computer_call_output": ItemType("cuo", ("call_id", "output"), _STEPS | {"failed"}),
    "tool_search_call": ItemType("tsc", ("arguments", "execution"), _STEPS),
    "tool_search_output": ItemType("tso", ("execution", "tools"), _STEPS),
    "additional_tools": ItemType("at", ("role", "tools"), None),
    "configuration_update": ItemType("cfg", (), None),
    "program": ItemType("prg", ("call_id", "code", "fingerprint"), None),
    "program_output": ItemType("prgo", ("call_id", "result"), frozenset({"completed", "incomplete"})),
    "compaction": ItemType("cmp", ("encrypted_content",), None),
    "code_interpreter_call": ItemType(
        "ci", ("container_id",), frozenset({"in_progress", "completed", "incomplete", "interpreting", "failed"})
    ),
    "local_shell_call": ItemType("lsh", ("action", "call_id"), _STEPS),
    "local_shell_call_output": ItemType("lsho", ("output",), _STEPS),
    "shell_call": ItemType("sh", ("action", "call_id"), _STEPS),
    "shell_call_output": ItemType("sho", ("call_id", "output"), _STEPS),
    "apply_patch_call": ItemType("apc", ("call_id", "operation"), frozenset({"in_progress", "completed"})),
    "apply_patch_call_output": ItemType("apco", ("call_id",), frozenset({"completed", "failed"})),
    "mcp_list_tools": ItemType("mcpl", ("server_label", "tools"), None),
    "mcp_approval_request": ItemType("mcpr", ("arguments", "name", "server_label"), None),
    "mcp_approval_response": ItemType("mcpa", ("approval_request_id", "approve"), None),
    "mcp_call": ItemType(
        "mcp", ("arguments", "name", "server_label"), frozenset({"in_progress", "completed", "incomplete", "failed"})
    ),
    "custom_tool_call": ItemType("ctc", ("call_id", "input", "name"), None),
    "custom_tool_call_output": ItemType("ctco", ("call_id", "output"), None),
}

ROLES = ("user", "assistant", "system", "developer")
_INPUT_PARTS = ("input_text", "input_image", "input_file")
_OUTPUT_PARTS = ("output_text", "refusal")


@dataclass(frozen=True, slots=True)
class Item:
    """An item of a conversation or a response: its id, type and whole JSON (`to_api()`)."""

    id: str
    type: str
    data: Json

    @classmethod
    def from_row(cls, m: Row) -> Item:
        """Build from a row of conversation_items or response_items."""
        return cls(m["id"], m["type"], m["data"])

    @property
    def status(self) -> str | None:
        """The item's status, for the types that have one."""
        status = self.data.get("status")
        return status if isinstance(status, str) else None

    def to_api(self) -> Json:
        """The API's item object (a copy)."""
        return dict(self.data)


def check_items(name: str, items: object, *, default_status: str = "completed", limit: int | None = None) -> list[Json]:
    """Check a list of items; each becomes its stored JSON.

    Raises:
        ValidationError: not a list, more than `limit` items, an unknown type, a missing or
            malformed field, or two items with one id.
    """
    given = check_list(name, items)
    if limit is not None and len(given) > limit:
        raise ValidationError(f"{name} may hold at most {limit} items, got {len(given)}.")
    checked = [check_item(f"{name}[{index}]", item, default_status=default_status) for index, item in enumerate(given)]
    if len({item["id"] for item in checked}) != len(checked):
        raise ValidationError(f"{name} holds two items with one id.")
    return checked


def check_item(name: str, item: object, *, default_status: str = "completed") -> Json:
    """Check one item; return its stored JSON, with an id and (for types with one) a status.

    A mapping without a `type` but with a `role` is a message, as the API takes it.

    Raises:
        ValidationError: an unknown type, a missing or malformed field.
    """
    data = check_mapping(name, item)  # a copy, checked to be JSON all the way down
    kind = data.setdefault("type", "message") if "role" in data else data.get("type")
    if not isinstance(kind, str) or kind not in ITEM_TYPES:
        raise ValidationError(f"{name}.type must be one of {sorted(ITEM_TYPES)}, got {kind!r}.")
    spec = ITEM_TYPES[kind]
    if not data.keys() >= spec.required_set:
        missing = [required for required in spec.required if required not in data]
        raise ValidationError(f"{name} ({kind}) lacks {', '.join(missing)}.")
    # The JSON's strings are checked already: what is left is their types and choices, each check
    # called only for its error (its name is spelled out only then).
    item_id = data.get("id")
    if item_id is None:
        data["id"] = new_id(spec.prefix)
    elif type(item_id) is not str:
        check_string(f"{name}.id", item_id)
    if spec.statuses is not None:
        status = data.get("status")
        if status is None:
            data["status"] = default_status
        elif type(status) is not str or status not in spec.statuses:
            check_choice(f"{name}.status", status, spec.statuses)
    elif "status" in data:
        raise ValidationError(f"{name} ({kind}) has no status.")
    check = _DETAILS.get(kind)
    if check is not None:
        check(name, data)
    return data


def _message(name: str, data: Json) -> None:
    role = data["role"]
    if role not in ROLES:
        check_choice(f"{name}.role", role, ROLES)
    data["content"] = content(f"{name}.content", data["content"], role)


def content(name: str, value: object, role: str) -> list[Json]:
    """A message's content (JSON already checked and copied): a string becomes one text part
    (input_text, or output_text for the assistant); a list holds the API's parts.

    Every string in it has passed check_json already, so a part's text needs only to be a string;
    each check is called for its error only when the part fails it (no name is spelled out otherwise).

    Raises:
        ValidationError: a part of an unknown type or with a malformed text.
    """
    output = role == "assistant"
    if type(value) is str:  # a plain, checked string (check_json copied any subclass to one)
        return [{"type": "output_text", "text": value, "annotations": []} if output else _input_text(value)]
    allowed = _OUTPUT_PARTS if output else _INPUT_PARTS
    parts = value if type(value) is list else check_list(name, value)  # a list: check_json's own copy
    for index, part in enumerate(parts):
        if type(part) is not dict:
            _object(f"{name}[{index}]", part)
        kind = part.get("type")
        if kind not in allowed:
            check_choice(f"{name}[{index}].type", kind, allowed)
        if kind == "input_text" or kind == "output_text":
            if type(part.get("text")) is not str:
                check_string(f"{name}[{index}].text", part.get("text"))
            if kind == "output_text" and type(part.setdefault("annotations", [])) is not list:
                check_list(f"{name}[{index}].annotations", part["annotations"])
        elif kind == "refusal":
            check_string(f"{name}[{index}].refusal", part.get("refusal"))
        elif kind == "input_image":
            part.setdefault("detail", "auto")
    return parts


def _object(name: str, value: object) -> Json:
    """`value`, a part of an item whose JSON is checked already, if it is an object."""
    if not isinstance(value, dict):
        raise ValidationError(f"{name} must be an object, not {type(value).__name__}.")
    return value


def _input_text(text: str) -> Json:
    return {"type": "input_text", "text": text}


def _strings(*fields: str) -> Any:
    def check(name: str, data: Json) -> None:
        for key in fields:
            check_string(f"{name}.{key}", data[key])

    return check


def _function_call_output(name: str, data: Json) -> None:
    check_string(f"{name}.call_id", data["call_id"])
    if not isinstance(data["output"], str):
        check_list(f"{name}.output", data["output"])


def _reasoning(name: str, data: Json) -> None:
    for index, part in enumerate(check_list(f"{name}.summary", data["summary"])):
        part = _object(f"{name}.summary[{index}]", part)
        check_choice(f"{name}.summary[{index}].type", part.get("type"), ("summary_text",))
        check_string(f"{name}.summary[{index}].text", part.get("text"))


_DETAILS: Mapping[str, Any] = {
    "message": _message,
    "function_call": _strings("call_id", "name", "arguments"),
    "function_call_output": _function_call_output,
    "reasoning": _reasoning,
}


def input_items(value: object) -> list[Json]:
    """A response's `input`: a string is one user message; a list holds items.

    Raises:
        ValidationError: as check_items.
    """
    if isinstance(value, str):
        return [check_item("input", {"type": "message", "role": "user", "content": value})]
    return check_items("input", value)


def ended(data: Json, response_status: str, target: str) -> Json:
    """The item `data` once its response has ended: `target` if its type allows it, else the
    nearest status its type has."""
    statuses = ITEM_TYPES[data["type"]].statuses or frozenset()
    for status in (target, "failed" if response_status == "failed" else "incomplete", "completed"):
        if status in statuses:
            return {**data, "status": status}
    return data
