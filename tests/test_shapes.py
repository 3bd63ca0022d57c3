"""Every object's to_api() is the API's JSON: it validates against the openai package's models,
with exactly their keys, in every state the store can put it in."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.beta import Assistant, Thread
from openai.types.beta.threads import Message, Run
from openai.types.beta.threads.runs import RunStep
from pydantic import BaseModel

from tests.factories import CALL, USAGE, assistant_id, run_in, thread_id
from threadstore import Store
from threadstore.openai.states import MESSAGE_INCOMPLETE_REASONS, RUN, RUN_STEP
from threadstore.types import MessageContentPart, MessageIncompleteReason

# The v1 message object (seed 003): `file_ids` where v2 has `attachments`.
MESSAGE_V1_KEYS = {
    "id",
    "object",
    "created_at",
    "thread_id",
    "status",
    "incomplete_details",
    "completed_at",
    "incomplete_at",
    "role",
    "content",
    "assistant_id",
    "run_id",
    "file_ids",
    "metadata",
}


def assert_api_shape(shape: dict[str, Any], model: type[BaseModel]) -> None:
    model.model_validate(shape)
    assert set(shape) == set(model.model_fields)


def test_assistant_matches_the_api_model(store: Store) -> None:
    created = store.assistants.create(
        model="gpt-4o",
        name="n",
        description="d",
        instructions="i",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": ["file_1"]}},
        metadata={"k": "v"},
        temperature=0.5,
        top_p=1,
        response_format={"type": "json_object"},
    )
    assert_api_shape(created.to_api(), Assistant)
    assert_api_shape(store.assistants.get(created.id).to_api(), Assistant)
    assert_api_shape(store.assistants.create(model="gpt-4o").to_api(), Assistant)


def test_assistant_timestamps_are_integer_seconds(store: Store, clock: Any) -> None:
    shape = store.assistants.create(model="gpt-4o").to_api()
    assert shape["created_at"] == clock.seconds
    assert type(shape["created_at"]) is int


def test_thread_matches_the_api_model(store: Store) -> None:
    bare = store.threads.create()
    full = store.threads.create(metadata={"a": "b"}, tool_resources={"file_search": {"vector_store_ids": ["vs_1"]}})
    for thread in (bare, full, store.threads.get(full.id)):
        assert_api_shape(thread.to_api(), Thread)


def test_deletion_objects_say_what_was_deleted(store: Store) -> None:
    thread = store.threads.create()
    assert store.threads.delete(thread.id).to_api() == {"id": thread.id, "object": "thread.deleted", "deleted": True}


RICH_CONTENT: list[MessageContentPart] = [
    {"type": "text", "text": "plain"},
    {
        "type": "text",
        "text": {
            "value": "cited【1】",
            "annotations": [
                {
                    "type": "file_citation",
                    "text": "【1】",
                    "file_citation": {"file_id": "file_1"},
                    "start_index": 5,
                    "end_index": 8,
                },
                {
                    "type": "file_path",
                    "text": "p",
                    "file_path": {"file_id": "file_2"},
                    "start_index": 0,
                    "end_index": 1,
                },
            ],
        },
    },
    {"type": "image_file", "image_file": {"file_id": "file_3", "detail": "low"}},
    {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
    {"type": "refusal", "refusal": "no"},
]


def test_message_with_every_content_part_matches_the_api_model(store: Store) -> None:
    message = store.messages.create(
        thread_id(store),
        role="user",
        content=RICH_CONTENT,
        attachments=[{"file_id": "file_9", "tools": [{"type": "file_search"}]}],
        metadata={"k": "v"},
    )
    assert_api_shape(message.to_api(), Message)
    assert [part["type"] for part in message.to_api()["content"]] == [p["type"] for p in RICH_CONTENT]


def test_message_string_content_becomes_one_text_part(store: Store) -> None:
    message = store.messages.create(thread_id(store), role="user", content="Hello")
    assert message.to_api()["content"] == [{"type": "text", "text": {"value": "Hello", "annotations": []}}]


def test_message_in_progress_and_completed_match_the_api_model(store: Store) -> None:
    run = run_in(store, "in_progress")
    message = store.messages.create(run.thread_id, role="assistant", content="...", run_id=run.id, status="in_progress")
    assert_api_shape(message.to_api(), Message)
    assert message.completed_at is None
    completed = store.messages.complete(message.id)
    assert_api_shape(completed.to_api(), Message)
    assert completed.completed_at is not None


@pytest.mark.parametrize("reason", MESSAGE_INCOMPLETE_REASONS)
def test_incomplete_message_matches_the_api_model(store: Store, reason: MessageIncompleteReason) -> None:
    run = run_in(store, "in_progress")
    message = store.messages.create(run.thread_id, role="assistant", content="..", run_id=run.id, status="in_progress")
    shape = store.messages.mark_incomplete(message.id, reason=reason).to_api()
    assert_api_shape(shape, Message)
    assert shape["incomplete_details"] == {"reason": reason}
    assert shape["incomplete_at"] is not None


def test_message_v1_shape_has_file_ids_instead_of_attachments(store: Store) -> None:
    message = store.messages.create(
        thread_id(store),
        role="user",
        content="see files",
        attachments=[{"file_id": "file_a", "tools": [{"type": "code_interpreter"}]}, {"file_id": "file_b"}],
    )
    shape = message.to_api(version="v1")
    assert set(shape) == MESSAGE_V1_KEYS
    assert shape["file_ids"] == ["file_a", "file_b"]


def test_page_of_messages_passes_the_version_to_each_item(store: Store) -> None:
    thread = thread_id(store)
    store.messages.create(thread, role="user", content="x", attachments=[{"file_id": "file_a"}])
    page = store.messages.list(thread).to_api(version="v1")
    assert page["data"][0]["file_ids"] == ["file_a"]


@pytest.mark.parametrize("status", sorted(RUN.statuses))
def test_run_in_every_status_matches_the_api_model(store: Store, status: str) -> None:
    run = run_in(store, status)
    assert_api_shape(run.to_api(), Run)
    assert_api_shape(store.runs.get(run.id).to_api(), Run)


def test_run_takes_model_instructions_and_tools_from_its_assistant(store: Store) -> None:
    assistant = store.assistants.create(model="gpt-4o-mini", instructions="be brief", tools=[{"type": "file_search"}])
    run = store.runs.create(thread_id(store), assistant_id=assistant.id)
    assert (run.model, run.instructions, run.tools) == ("gpt-4o-mini", "be brief", [{"type": "file_search"}])


def test_run_overrides_its_assistant_when_asked(store: Store) -> None:
    run = store.runs.create(thread_id(store), assistant_id=assistant_id(store), model="o3", instructions="other")
    assert (run.model, run.instructions) == ("o3", "other")


def test_run_is_created_queued_and_expiring_after_expires_in(store: Store, clock: Any) -> None:
    run = store.runs.create(thread_id(store), assistant_id=assistant_id(store), expires_in=120)
    assert run.status == "queued"
    assert run.expires_at == clock.seconds + 120


def _step_details(kind: str, message_id: str) -> dict[str, Any]:
    if kind == "message_creation":
        return {"type": "message_creation", "message_creation": {"message_id": message_id}}
    return {
        "type": "tool_calls",
        "tool_calls": [
            {
                "id": "call_ci",
                "type": "code_interpreter",
                "code_interpreter": {"input": "1+1", "outputs": [{"type": "logs", "logs": "2"}]},
            },
            {"id": "call_fs", "type": "file_search", "file_search": {}},
            {"type": "function", "function": {"name": "f", "arguments": "{}"}},
        ],
    }


@pytest.mark.parametrize("kind", ["message_creation", "tool_calls"])
@pytest.mark.parametrize("status", sorted(RUN_STEP.statuses))
def test_run_step_of_each_type_in_every_status_matches_the_api_model(store: Store, kind: str, status: str) -> None:
    run = run_in(store, "in_progress")
    message = store.messages.create(run.thread_id, role="assistant", content="x", run_id=run.id)
    step = store.run_steps.create(run.id, step_details=_step_details(kind, message.id))
    ends = {
        "in_progress": lambda i: store.run_steps.get(i),
        "completed": lambda i: store.run_steps.complete(i, usage=USAGE),
        "failed": lambda i: store.run_steps.fail(i, code="rate_limit_exceeded", message="slow down"),
        "cancelled": lambda i: store.run_steps.cancel(i),
        "expired": lambda i: store.run_steps.expire(i),
    }
    ended = ends[status](step.id)
    assert (ended.status, ended.type) == (status, kind)
    assert_api_shape(ended.to_api(), RunStep)
    assert_api_shape(store.run_steps.get(step.id).to_api(), RunStep)


def test_run_step_usage_and_last_error_come_from_their_tables(store: Store) -> None:
    run = run_in(store, "in_progress")
    step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": [CALL]})
    failed = store.run_steps.fail(step.id, code="server_error", message="down", usage=USAGE).to_api()
    assert failed["last_error"] == {"code": "server_error", "message": "down"}
    assert failed["usage"] == USAGE


def test_run_step_usage_is_null_while_in_progress(store: Store) -> None:
    run = run_in(store, "in_progress")
    step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": [CALL]})
    assert step.to_api()["usage"] is None
    assert step.to_api()["last_error"] is None


def test_list_page_has_the_api_list_shape(store: Store) -> None:
    thread = thread_id(store)
    ids = [store.messages.create(thread, role="user", content=str(i)).id for i in range(3)]
    page = store.messages.list(thread, limit=2, order="asc").to_api()
    assert set(page) == {"object", "data", "first_id", "last_id", "has_more"}
    assert (page["object"], page["first_id"], page["last_id"], page["has_more"]) == ("list", ids[0], ids[1], True)
    for item in page["data"]:
        assert_api_shape(item, Message)
