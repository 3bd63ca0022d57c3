"""Checks for the structured inputs of the OpenAI objects: message content parts, attachments,
tools, tool resources, response formats and run step details. Each returns the value in the
shape the API returns it and raises ValidationError for anything else.
"""

from __future__ import annotations

from typing import Any

from threadstore.errors import ValidationError, shown
from threadstore.ids import new_id
from threadstore.openai.states import TOOL_TYPES
from threadstore.records import Json
from threadstore.validation import (
    MAX_INT32,
    check_choice,
    check_int,
    check_json,
    check_list,
    check_mapping,
    check_optional_string,
    check_string,
)

CONTENT_TYPES = ("text", "image_file", "image_url", "refusal")
ANNOTATION_TYPES = ("file_citation", "file_path")
IMAGE_DETAILS = ("auto", "low", "high")
ATTACHMENT_TOOLS = ("code_interpreter", "file_search")
TOOL_CALL_TYPES = ("code_interpreter", "file_search", "function")


def _field(name: str, mapping: Json, key: str) -> Any:
    if key not in mapping:
        raise ValidationError(f"{name} needs {key!r}.")
    return mapping[key]


def message_content(content: object) -> list[Json]:
    """A message's content: a string (one text part) or a non-empty list of content parts.

    Raises:
        ValidationError: not a string or list, an empty list, or a malformed or unknown part.
    """
    if isinstance(content, str):
        return [{"type": "text", "text": {"value": check_string("content", content), "annotations": []}}]
    parts = check_list("content", content)
    if not parts:
        raise ValidationError("content must not be empty.")
    return [_content_part(f"content[{i}]", part) for i, part in enumerate(parts)]


def _content_part(name: str, part: object) -> Json:
    part = check_mapping(name, part)
    kind = check_choice(f"{name}.type", part.get("type"), CONTENT_TYPES)
    if kind == "text":
        text = _field(name, part, "text")
        if isinstance(text, str):
            return _text_part({"value": text, "annotations": []})
        text = check_mapping(f"{name}.text", text)
        return _text_part(text)
    if kind == "refusal":
        return {"type": "refusal", "refusal": check_string(f"{name}.refusal", _field(name, part, "refusal"))}
    image = check_mapping(f"{name}.{kind}", _field(name, part, kind))
    source = "file_id" if kind == "image_file" else "url"
    detail = image.get("detail", "auto")
    return {
        "type": kind,
        kind: {
            source: check_string(f"{name}.{kind}.{source}", _field(name, image, source)),
            "detail": check_choice(f"{name}.{kind}.detail", detail, IMAGE_DETAILS),
        },
    }


def _text_part(text: Json) -> Json:
    value = check_string("text.value", _field("text", text, "value"))
    annotations = check_list("text.annotations", text.get("annotations", []))
    return {
        "type": "text",
        "text": {"value": value, "annotations": [_annotation(a) for a in annotations]},
    }


def _annotation(annotation: object) -> Json:
    annotation = check_mapping("annotation", annotation)
    kind = check_choice("annotation.type", annotation.get("type"), ANNOTATION_TYPES)
    target = check_mapping(f"annotation.{kind}", _field("annotation", annotation, kind))
    return {
        "type": kind,
        "text": check_string("annotation.text", _field("annotation", annotation, "text")),
        kind: {"file_id": check_string(f"annotation.{kind}.file_id", _field(kind, target, "file_id"))},
        "start_index": check_int("annotation.start_index", annotation.get("start_index"), minimum=0),
        "end_index": check_int("annotation.end_index", annotation.get("end_index"), minimum=0),
    }


def attachments(value: object) -> list[Json]:
    """A message's attachments: files and the tools they were added to.

    Raises:
        ValidationError: not a list of {"file_id": str, "tools": [{"type": ...}]}.
    """
    if value is None:
        return []
    checked = []
    for i, item in enumerate(check_list("attachments", value)):
        item = check_mapping(f"attachments[{i}]", item)
        tools = check_list(f"attachments[{i}].tools", item.get("tools", []))
        checked.append(
            {
                "file_id": check_string(f"attachments[{i}].file_id", _field("attachment", item, "file_id")),
                "tools": [
                    {
                        "type": check_choice(
                            "attachment tool type", check_mapping("tool", t).get("type"), ATTACHMENT_TOOLS
                        )
                    }
                    for t in tools
                ],
            }
        )
    return checked


def tools(value: object) -> list[Json]:
    """An assistant's or run's tools: code_interpreter, file_search, or function with a name.

    Raises:
        ValidationError: an unknown tool type or a function without a name.
    """
    if value is None:
        return []
    checked = []
    for i, tool in enumerate(check_list("tools", value)):
        tool = check_mapping(f"tools[{i}]", tool)
        check_choice(f"tools[{i}].type", tool.get("type"), TOOL_TYPES)
        if tool["type"] == "function":
            function = check_mapping(f"tools[{i}].function", _field(f"tools[{i}]", tool, "function"))
            check_string(f"tools[{i}].function.name", _field("function", function, "name"), max_length=64)
        checked.append(tool)
    return checked


def tool_resources(value: object) -> Json | None:
    """Tool resources: code_interpreter file ids and file_search vector store ids.

    Raises:
        ValidationError: anything but those two keys, holding lists of strings.
    """
    if value is None:
        return None
    value = check_mapping("tool_resources", value)
    allowed = {"code_interpreter": "file_ids", "file_search": "vector_store_ids"}
    checked: Json = {}
    for key, entry in value.items():
        field = allowed.get(key)
        if field is None:
            raise ValidationError(f"tool_resources has no {shown(key)}; it takes {sorted(allowed)}.")
        entry = check_mapping(f"tool_resources.{key}", entry)
        ids = check_list(f"tool_resources.{key}.{field}", entry.get(field, []))
        checked[key] = {field: [check_string(f"{key} id", i) for i in ids]}
    return checked


def response_format(value: object) -> Any:
    """`"auto"` or a `{"type": "text" | "json_object" | "json_schema", ...}` object.

    Raises:
        ValidationError: anything else.
    """
    if value == "auto":
        return "auto"
    value = check_mapping("response_format", value)
    check_choice("response_format.type", value.get("type"), ("text", "json_object", "json_schema"))
    return value


def tool_choice(value: object) -> Any:
    """`none`, `auto`, `required`, or a `{"type": ...}` object naming a tool.

    Raises:
        ValidationError: anything else.
    """
    if isinstance(value, str):
        return check_choice("tool_choice", value, ("none", "auto", "required"))
    value = check_mapping("tool_choice", value)
    check_choice("tool_choice.type", value.get("type"), TOOL_TYPES)
    return value


def truncation_strategy(value: object) -> Json:
    """`{"type": "auto"}` or `{"type": "last_messages", "last_messages": n}`; None means auto.

    Raises:
        ValidationError: anything else.
    """
    if value is None:
        return {"type": "auto", "last_messages": None}
    value = check_mapping("truncation_strategy", value)
    kind = check_choice("truncation_strategy.type", value.get("type"), ("auto", "last_messages"))
    last = value.get("last_messages")
    if kind == "last_messages" or last is not None:
        last = check_int("truncation_strategy.last_messages", last, minimum=1)
    return {"type": kind, "last_messages": last}


def tool_calls(value: object) -> list[Json]:
    """A tool_calls step's calls: code_interpreter, file_search or function, each with an id
    (one is made when missing). A function call's `output` stays null until it is submitted.

    Raises:
        ValidationError: an unknown call type or a call missing its fields.
    """
    return [_tool_call(f"tool_calls[{i}]", c) for i, c in enumerate(check_list("tool_calls", value))]


def _tool_call(name: str, call: object) -> Json:
    call = check_mapping(name, call)
    kind = check_choice(f"{name}.type", call.get("type"), TOOL_CALL_TYPES)
    call_id = check_string(f"{name}.id", call.get("id") or new_id("call"))
    body = check_mapping(f"{name}.{kind}", call.get(kind, {}))
    if kind == "function":
        body = {
            "name": check_string(f"{name}.function.name", _field(name, body, "name")),
            "arguments": check_string(f"{name}.function.arguments", body.get("arguments", "")),
            "output": check_optional_string(f"{name}.function.output", body.get("output")),
        }
    elif kind == "code_interpreter":
        body = {
            "input": check_string(f"{name}.code_interpreter.input", body.get("input", "")),
            "outputs": check_list(f"{name}.code_interpreter.outputs", body.get("outputs", [])),
        }
    return {"id": call_id, "type": kind, kind: check_json(f"{name}.{kind}", body)}


def step_details(value: object) -> Json:
    """A run step's details: message_creation with a message id, or tool_calls.

    Raises:
        ValidationError: an unknown step type or malformed details.
    """
    value = check_mapping("step_details", value)
    kind = check_choice("step_details.type", value.get("type"), ("message_creation", "tool_calls"))
    if kind == "message_creation":
        creation = check_mapping("message_creation", _field("step_details", value, "message_creation"))
        message_id = check_string("message_creation.message_id", _field("message_creation", creation, "message_id"))
        return {"type": kind, "message_creation": {"message_id": message_id}}
    return {"type": kind, "tool_calls": tool_calls(_field("step_details", value, "tool_calls"))}


def usage(value: object) -> dict[str, int] | None:
    """Token usage: prompt_tokens and completion_tokens, and total_tokens (their sum if left out).

    Raises:
        ValidationError: a count that is not a non-negative integer, or a wrong total.
    """
    if value is None:
        return None
    value = check_mapping("usage", value)
    prompt = check_int("usage.prompt_tokens", value.get("prompt_tokens"), minimum=0, maximum=MAX_INT32)
    completion = check_int("usage.completion_tokens", value.get("completion_tokens"), minimum=0, maximum=MAX_INT32)
    total = check_int(
        "usage.total_tokens", value.get("total_tokens", prompt + completion), minimum=0, maximum=MAX_INT32
    )
    if total != prompt + completion:
        raise ValidationError(f"usage.total_tokens must be {prompt + completion}, the sum of the others.")
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


def last_error(code: object, message: object, codes: tuple[str, ...]) -> tuple[str, str]:
    """A failure's code (one of `codes`) and message.

    Raises:
        ValidationError: an unknown code or a message that is not a string.
    """
    return check_choice("code", code, codes), check_string("message", message, max_length=10_000)
