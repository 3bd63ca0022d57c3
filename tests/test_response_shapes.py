"""Every Responses and Conversations object's to_api() validates against the openai package's
models, with exactly their keys where the API defines them all, in every status a response can
be in, and every item type as a conversation item."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from openai.types.conversations import Conversation, ConversationDeletedResource, ConversationItemList
from openai.types.conversations.conversation_item import ConversationItem
from openai.types.responses import Response, ResponseItem
from pydantic import TypeAdapter

from threadstore import Store
from threadstore.responses.states import RESPONSE

ITEM = TypeAdapter(ConversationItem)
INPUT_ITEM = TypeAdapter(ResponseItem)
# Every key of the Response object that threadstore keeps (the SDK also lists optional keys of
# features it does not store, such as prompt caching and moderation).
RESPONSE_KEYS = {
    "id", "object", "created_at", "status", "background", "completed_at", "conversation", "error",
    "incomplete_details", "instructions", "max_output_tokens", "metadata", "model", "output",
    "parallel_tool_calls", "previous_response_id", "reasoning", "store", "temperature", "text",
    "tool_choice", "tools", "top_p", "truncation", "usage", "user",
}  # fmt: skip

ONE_OF_EACH_ITEM: list[dict[str, Any]] = [
    {"type": "message", "role": "user", "content": "Hi"},
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]},
    {"type": "message", "role": "developer", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]},
    {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "call_1", "output": "42"},
    {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thinking"}]},
    {"type": "file_search_call", "queries": ["q"]},
    {"type": "web_search_call", "action": {"type": "search", "query": "q"}},
    {"type": "image_generation_call"},
    {"type": "mcp_call", "arguments": "{}", "name": "tool", "server_label": "srv"},
    {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": True},
    {"type": "custom_tool_call_output", "call_id": "call_2", "output": "done"},
]


def reached(store: Store) -> dict[str, Callable[[], Any]]:
    """A response in each status, with output items where it can have them."""

    def working() -> str:
        created = store.responses.create(
            model="gpt-4o", input="Hi", background=True, tools=[{"type": "function", "name": "f", "parameters": {}}]
        )
        started = store.responses.start(created.id).id
        reply = store.responses.add_output_item(started, item={"type": "message", "role": "assistant", "content": []})
        store.responses.append_text(started, item_id=reply.id, text="Hi there")
        return started

    usage = {"input_tokens": 3, "output_tokens": 2}
    return {
        "queued": lambda: store.responses.create(model="gpt-4o", input="Hi", background=True, metadata={"k": "v"}),
        "in_progress": lambda: store.responses.get(working()),
        "completed": lambda: store.responses.complete(working(), usage=usage),
        "failed": lambda: store.responses.fail(working(), code="server_error", message="boom"),
        "incomplete": lambda: store.responses.mark_incomplete(working(), reason="max_output_tokens"),
        "cancelled": lambda: store.responses.cancel(working()),
    }


@pytest.mark.parametrize("status", sorted(RESPONSE.statuses))
def test_a_response_matches_the_api_model_in_every_status(store: Store, status: str) -> None:
    response = reached(store)[status]()
    assert response.status == status
    for shape in (response.to_api(), store.responses.get(response.id).to_api()):
        Response.model_validate(shape)
        assert set(shape) == RESPONSE_KEYS
        assert shape["status"] == status


def test_a_response_in_a_conversation_names_it(store: Store) -> None:
    conversation = store.conversations.create()
    response = store.responses.create(model="gpt-4o", input="Hi", conversation=conversation.id)
    shape = Response.model_validate(response.to_api())
    assert shape.conversation is not None and shape.conversation.id == conversation.id


def test_a_conversation_and_its_deletion_match_the_api_models(store: Store) -> None:
    conversation = store.conversations.create(metadata={"user": "42"})
    shape = conversation.to_api()
    Conversation.model_validate(shape)
    assert set(shape) == set(Conversation.model_fields)
    Conversation.model_validate(store.conversations.update(conversation.id, metadata=None).to_api())
    ConversationDeletedResource.model_validate(store.conversations.delete(conversation.id).to_api())


def test_every_kind_of_item_matches_the_api_conversation_item(store: Store) -> None:
    conversation = store.conversations.create(items=ONE_OF_EACH_ITEM)
    page = store.conversations.items.list(conversation.id, order="asc")
    ConversationItemList.model_validate(page.to_api())
    for item in page:
        assert ITEM.validate_python(item.to_api()).type == item.type
    assert [item.type for item in page] == [item["type"] for item in ONE_OF_EACH_ITEM]


def test_input_items_match_the_api_response_item(store: Store) -> None:
    response = store.responses.create(model="gpt-4o", input=ONE_OF_EACH_ITEM[:6])
    page = store.responses.input_items.list(response.id)
    for item in page:
        INPUT_ITEM.validate_python(item.to_api())


def test_timestamps_are_integer_seconds(store: Store) -> None:
    conversation = store.conversations.create()
    response = store.responses.create(model="gpt-4o", input="Hi", conversation=conversation.id)
    done = store.responses.complete(response.id)
    assert all(type(value) is int for value in (conversation.created_at, done.created_at, done.completed_at))
