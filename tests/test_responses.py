"""Responses and Conversations: conversations and their items (order by position, keyset pages),
responses through their lifecycle, what `complete` appends to a conversation, the one response
in progress per conversation, context chains, and bad input that writes nothing. Every test runs
on both backends and both stores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import FakeClock, snapshot
from threadstore import ConflictError, InvalidTransitionError, NotFoundError, Store, ValidationError
from threadstore.responses.items import ITEM_TYPES
from threadstore.responses.models import responses
from threadstore.types import Order

USER_HI = {"type": "message", "role": "user", "content": "Hi"}
USAGE = {"input_tokens": 5, "output_tokens": 2}


def say(text: str, role: str = "user") -> dict[str, Any]:
    return {"type": "message", "role": role, "content": text}


def running(store: Store, **options: Any) -> str:
    """A background response, claimed: in progress."""
    created = store.responses.create(model="gpt-4o", input="Hi", background=True, **options)
    claimed = store.responses.start(created.id)
    return claimed.id


def texts(items: Any) -> list[str]:
    return [part.get("text", "") for item in items if item.type == "message" for part in item.data["content"]]


# --- conversations ------------------------------------------------------------------------------


def test_a_conversation_is_created_with_its_items_in_order(store: Store) -> None:
    conversation = store.conversations.create(items=[say("a"), say("b"), say("c")], metadata={"user": "42"})
    page = store.conversations.items.list(conversation.id, order="asc")
    assert texts(page) == ["a", "b", "c"]
    assert store.conversations.get(conversation.id).metadata == {"user": "42"}


def test_a_conversation_id_has_the_api_prefix_and_items_their_types_prefixes(store: Store) -> None:
    conversation = store.conversations.create(
        items=[say("a"), {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}]
    )
    assert conversation.id.startswith("conv_")
    prefixes = [item.id.split("_")[0] for item in store.conversations.items.list(conversation.id, order="asc")]
    assert prefixes == ["msg", "fc"]


def test_items_created_in_one_call_keep_their_order_though_they_share_a_second(store: Store, clock: FakeClock) -> None:
    conversation = store.conversations.create()
    store.conversations.items.create(conversation.id, items=[say(str(n)) for n in range(20)])
    clock.advance(-10)  # a clock that steps back does not reorder anything
    store.conversations.items.create(conversation.id, items=[say("later")])
    assert texts(store.conversations.items.list(conversation.id, order="asc", limit=100)) == [
        *(str(n) for n in range(20)),
        "later",
    ]


def test_keyset_pages_walk_every_item_once_in_both_directions(store: Store) -> None:
    conversation = store.conversations.create()
    for batch in range(3):
        store.conversations.items.create(conversation.id, items=[say(f"{batch}.{n}") for n in range(10)])
    expected = [f"{batch}.{n}" for batch in range(3) for n in range(10)]
    orders: list[tuple[Order, list[str]]] = [("asc", expected), ("desc", expected[::-1])]
    for order, wanted in orders:
        seen: list[str] = []
        after = None
        while True:
            page = store.conversations.items.list(conversation.id, order=order, after=after, limit=7)
            seen += texts(page)
            after = page.last_id
            if not page.has_more:
                break
        assert seen == wanted


def test_has_more_is_exact_on_a_full_last_page(store: Store) -> None:
    conversation = store.conversations.create(items=[say(str(n)) for n in range(10)])
    first = store.conversations.items.list(conversation.id, limit=5, order="asc")
    second = store.conversations.items.list(conversation.id, limit=5, order="asc", after=first.last_id)
    assert (first.has_more, second.has_more, texts(second)) == (True, False, ["5", "6", "7", "8", "9"])


def test_before_pages_backward_in_list_order(store: Store) -> None:
    conversation = store.conversations.create(items=[say(str(n)) for n in range(6)])
    items = store.conversations.items.list(conversation.id, order="asc").data
    page = store.conversations.items.list(conversation.id, order="asc", before=items[4].id, limit=2)
    assert (texts(page), page.has_more) == (["2", "3"], True)


def test_a_cursor_from_another_conversation_is_refused(store: Store) -> None:
    mine = store.conversations.create(items=[say("a")])
    other = store.conversations.create(items=[say("b")])
    foreign = store.conversations.items.list(other.id).data[0].id
    with pytest.raises(ValidationError, match="not the id of an object in this list"):
        store.conversations.items.list(mine.id, after=foreign)


def test_an_item_is_read_and_deleted_within_its_conversation(store: Store) -> None:
    conversation = store.conversations.create(items=[say("a"), say("b")])
    first, second = store.conversations.items.list(conversation.id, order="asc")
    assert store.conversations.items.get(conversation.id, first.id).data["content"][0]["text"] == "a"
    other = store.conversations.create()
    with pytest.raises(NotFoundError):
        store.conversations.items.get(other.id, first.id)
    assert store.conversations.items.delete(conversation.id, first.id).id == conversation.id
    assert [item.id for item in store.conversations.items.list(conversation.id)] == [second.id]


def test_conversation_metadata_is_replaced_and_a_deleted_conversation_is_gone(store: Store) -> None:
    conversation = store.conversations.create(items=[say("a")], metadata={"a": "1"})
    assert store.conversations.update(conversation.id, metadata={"b": "2"}).metadata == {"b": "2"}
    assert store.conversations.delete(conversation.id).to_api() == {
        "id": conversation.id,
        "object": "conversation.deleted",
        "deleted": True,
    }
    with pytest.raises(NotFoundError):
        store.conversations.get(conversation.id)
    with pytest.raises(NotFoundError):
        store.conversations.items.list(conversation.id)


def test_a_response_outlives_its_deleted_conversation(store: Store) -> None:
    conversation = store.conversations.create()
    response = store.responses.create(model="gpt-4o", input="Hi", conversation=conversation.id)
    store.conversations.delete(conversation.id)
    kept = store.responses.get(response.id)
    assert (kept.conversation_id, kept.status) == (None, "in_progress")
    assert store.responses.complete(response.id).status == "completed"


# --- the response lifecycle ---------------------------------------------------------------------


def test_a_background_response_is_queued_and_any_other_starts_in_progress(store: Store) -> None:
    queued = store.responses.create(model="gpt-4o", input="Hi", background=True)
    direct = store.responses.create(model="gpt-4o", input="Hi")
    assert (queued.status, direct.status) == ("queued", "in_progress")
    assert queued.id.startswith("resp_")


def test_claim_next_takes_the_oldest_queued_background_response(store: Store, clock: FakeClock) -> None:
    first = store.responses.create(model="gpt-4o", input="1", background=True)
    clock.advance(1)
    store.responses.create(model="gpt-4o", input="2", background=True)
    claimed = store.responses.claim_next()
    assert claimed is not None and (claimed.id, claimed.status) == (first.id, "in_progress")


def test_claim_next_returns_none_when_nothing_is_queued(store: Store) -> None:
    store.responses.create(model="gpt-4o", input="Hi")  # in progress, not queued
    assert store.responses.claim_next() is None


def test_claim_next_skips_a_conversation_that_has_a_response_in_progress(store: Store, clock: FakeClock) -> None:
    busy = store.conversations.create()
    store.responses.create(model="gpt-4o", input="1", conversation=busy.id)
    waiting = store.responses.create(model="gpt-4o", input="2", conversation=busy.id, background=True)
    clock.advance(1)
    free = store.responses.create(model="gpt-4o", input="3", background=True)
    claimed = store.responses.claim_next()
    assert claimed is not None and claimed.id == free.id
    assert store.responses.get(waiting.id).status == "queued"


def test_a_conversation_has_at_most_one_response_in_progress(store: Store) -> None:
    conversation = store.conversations.create()
    first = store.responses.create(model="gpt-4o", input="1", conversation=conversation.id)
    with pytest.raises(ConflictError, match=first.id):
        store.responses.create(model="gpt-4o", input="2", conversation=conversation.id)
    queued = store.responses.create(model="gpt-4o", input="3", conversation=conversation.id, background=True)
    with pytest.raises(ConflictError) as refused:
        store.responses.start(queued.id)
    assert first.id in str(refused.value) and "at most one response in progress" in str(refused.value)
    store.responses.complete(first.id)
    assert store.responses.start(queued.id).status == "in_progress"


def test_the_database_refuses_a_second_response_in_progress_on_a_conversation(store: Store) -> None:
    conversation = store.conversations.create()
    first = store.responses.create(model="gpt-4o", input="1", conversation=conversation.id, background=True)
    second = store.responses.create(model="gpt-4o", input="2", conversation=conversation.id, background=True)
    with store.engine.begin() as connection:
        connection.execute(sa.update(responses).where(responses.c.id == first.id).values(status="in_progress"))
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as connection:
        connection.execute(sa.update(responses).where(responses.c.id == second.id).values(status="in_progress"))


def test_complete_appends_the_input_and_output_to_the_conversation(store: Store) -> None:
    conversation = store.conversations.create(items=[say("before")])
    response = store.responses.create(
        model="gpt-4o", input=[say("question"), say("more")], conversation=conversation.id
    )
    reply = store.responses.add_output_item(response.id, item={"type": "message", "role": "assistant", "content": []})
    store.responses.append_text(response.id, item_id=reply.id, text="answer")
    assert texts(store.conversations.items.list(conversation.id, order="asc")) == ["before"]
    store.responses.complete(response.id, usage=USAGE)
    items = store.conversations.items.list(conversation.id, order="asc").data
    assert texts(items) == ["before", "question", "more", "answer"]
    assert items[-1].id == reply.id and items[-1].status == "completed"


@pytest.mark.parametrize("end", ["fail", "mark_incomplete", "cancel"])
def test_a_response_that_does_not_complete_appends_nothing_to_its_conversation(store: Store, end: str) -> None:
    conversation = store.conversations.create()
    response = running(store, conversation=conversation.id)
    store.responses.add_output_item(response, item={"type": "message", "role": "assistant", "content": []})
    ended = {
        "fail": lambda: store.responses.fail(response, code="server_error", message="boom"),
        "mark_incomplete": lambda: store.responses.mark_incomplete(response, reason="max_output_tokens"),
        "cancel": lambda: store.responses.cancel(response),
    }[end]()
    assert [item.status for item in ended.output] == ["incomplete"]
    assert len(store.conversations.items.list(conversation.id)) == 0


def test_output_items_and_streamed_text_build_the_output(store: Store) -> None:
    response = running(store)
    call = store.responses.add_output_item(
        response,
        item={"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}", "status": "completed"},
    )
    message = store.responses.add_output_item(response, item={"type": "message", "role": "assistant", "content": []})
    for piece in ("Hel", "lo", "!"):
        store.responses.append_text(response, item_id=message.id, text=piece)
    done = store.responses.complete(response, usage=USAGE)
    assert [item.id for item in done.output] == [call.id, message.id]
    assert done.output_text == "Hello!"
    assert done.usage is not None and done.usage["total_tokens"] == 7
    assert done.completed_at is not None


def test_text_is_appended_only_to_a_message_in_progress_of_a_response_in_progress(store: Store) -> None:
    response = running(store)
    finished = store.responses.add_output_item(
        response, item={"type": "message", "role": "assistant", "content": "done", "status": "completed"}
    )
    with pytest.raises(ConflictError):
        store.responses.append_text(response, item_id=finished.id, text="more")
    with pytest.raises(NotFoundError):
        store.responses.append_text(response, item_id="msg_missing", text="more")
    queued = store.responses.create(model="gpt-4o", input="Hi", background=True)
    with pytest.raises(ConflictError):
        store.responses.add_output_item(queued.id, item={"type": "message", "role": "assistant", "content": []})


def test_only_a_background_response_can_be_cancelled(store: Store) -> None:
    direct = store.responses.create(model="gpt-4o", input="Hi")
    before = snapshot(store)
    with pytest.raises(ValidationError, match="background"):
        store.responses.cancel(direct.id)
    assert snapshot(store) == before
    queued = store.responses.create(model="gpt-4o", input="Hi", background=True)
    assert store.responses.cancel(queued.id).status == "cancelled"


@pytest.mark.parametrize("verb", ["complete", "fail", "mark_incomplete", "cancel", "start"])
def test_a_terminal_response_absorbs_every_move(store: Store, verb: str) -> None:
    response = running(store)
    store.responses.complete(response)
    before = snapshot(store)
    calls = {
        "complete": lambda: store.responses.complete(response),
        "fail": lambda: store.responses.fail(response, code="server_error", message="x"),
        "mark_incomplete": lambda: store.responses.mark_incomplete(response, reason="content_filter"),
        "cancel": lambda: store.responses.cancel(response),
        "start": lambda: store.responses.start(response),
    }
    with pytest.raises(InvalidTransitionError, match="completed"):
        calls[verb]()
    assert snapshot(store) == before


def test_error_incomplete_details_and_usage_are_held_only_where_the_rules_say(store: Store) -> None:
    failed = store.responses.fail(running(store), code="server_error", message="boom")
    incomplete = store.responses.mark_incomplete(running(store), reason="max_output_tokens")
    cancelled = store.responses.cancel(running(store))
    assert failed.to_api()["error"] == {"code": "server_error", "message": "boom"}
    assert failed.to_api()["incomplete_details"] is None
    assert incomplete.to_api()["incomplete_details"] == {"reason": "max_output_tokens"}
    assert incomplete.to_api()["error"] is None
    assert [r.completed_at for r in (failed, incomplete, cancelled)] == [None, None, None]
    assert store.responses.get(running(store)).usage is None


def test_delete_removes_a_response_its_items_and_its_events(store: Store) -> None:
    response = running(store)
    store.responses.delete(response)
    with pytest.raises(NotFoundError):
        store.responses.get(response)
    with pytest.raises(NotFoundError):
        store.responses.input_items.list(response)
    assert store.events.list(run_id=response) == []


# --- input items and context --------------------------------------------------------------------


def test_input_items_list_pages_a_responses_input(store: Store) -> None:
    response = store.responses.create(model="gpt-4o", input=[say(str(n)) for n in range(5)])
    first = store.responses.input_items.list(response.id, limit=3)
    rest = store.responses.input_items.list(response.id, limit=3, after=first.last_id)
    assert (texts(first), first.has_more, texts(rest), rest.has_more) == (["4", "3", "2"], True, ["1", "0"], False)


def test_a_string_input_is_one_user_message(store: Store) -> None:
    response = store.responses.create(model="gpt-4o", input="Hello")
    (item,) = store.responses.input_items.list(response.id)
    assert item.data["role"] == "user"
    assert item.data["content"] == [{"type": "input_text", "text": "Hello"}]


def test_context_of_a_chain_of_a_hundred_responses_holds_every_turn_in_order(store: Store) -> None:
    previous = None
    for turn in range(100):
        response = store.responses.create(model="gpt-4o", input=f"q{turn}", previous_response_id=previous)
        reply = store.responses.add_output_item(
            response.id, item={"type": "message", "role": "assistant", "content": f"a{turn}", "status": "completed"}
        )
        assert reply.status == "completed"
        store.responses.complete(response.id)
        previous = response.id
    last = store.responses.create(model="gpt-4o", input="last", previous_response_id=previous)
    expected = [text for turn in range(100) for text in (f"q{turn}", f"a{turn}")] + ["last"]
    assert texts(store.responses.context(last.id)) == expected
    with store.engine.connect() as connection:  # stored by reference: each turn's items once
        count = connection.execute(sa.text("SELECT count(*) FROM threadstore_response_items")).scalar_one()
    assert count == 201


def test_context_of_a_response_in_a_conversation_is_what_it_saw_then_its_input(store: Store) -> None:
    conversation = store.conversations.create(items=[say("a")])
    first = store.responses.create(model="gpt-4o", input="b", conversation=conversation.id)
    store.responses.add_output_item(
        first.id, item={"type": "message", "role": "assistant", "content": "c", "status": "completed"}
    )
    store.conversations.items.create(conversation.id, items=[say("added meanwhile")])
    store.responses.complete(first.id)
    assert texts(store.responses.context(first.id)) == ["a", "b"]
    second = store.responses.create(model="gpt-4o", input="d", conversation=conversation.id)
    assert texts(store.responses.context(second.id)) == ["a", "added meanwhile", "b", "c", "d"]


def test_context_of_a_queued_response_sees_the_conversation_as_it_is_now(store: Store) -> None:
    conversation = store.conversations.create(items=[say("a")])
    queued = store.responses.create(model="gpt-4o", input="q", conversation=conversation.id, background=True)
    store.conversations.items.create(conversation.id, items=[say("b")])
    assert texts(store.responses.context(queued.id)) == ["a", "b", "q"]
    store.responses.start(queued.id)
    store.conversations.items.create(conversation.id, items=[say("after the start")])
    assert texts(store.responses.context(queued.id)) == ["a", "b", "q"]


def test_context_of_a_missing_response_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.responses.context("resp_missing")


# --- bad input writes nothing -------------------------------------------------------------------


def bad_calls(store: Store, conversation: str, other: str, response: str) -> dict[str, Any]:
    foreign = store.conversations.items.list(other).data[0].id
    return {
        "unknown item type": lambda: store.conversations.items.create(conversation, items=[{"type": "spell"}]),
        "more than 20 items": lambda: store.conversations.items.create(conversation, items=[say("x")] * 21),
        "more than 20 items at create": lambda: store.conversations.create(items=[say("x")] * 21),
        "a message without content": lambda: store.conversations.create(items=[{"type": "message", "role": "user"}]),
        "a bad role": lambda: store.conversations.create(items=[say("x", role="wizard")]),
        "a bad content part": lambda: store.conversations.create(
            items=[{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]
        ),
        "a status the type lacks": lambda: store.conversations.create(items=[{**say("x"), "status": "searching"}]),
        "two items with one id": lambda: store.conversations.create(
            items=[{**say("x"), "id": "msg_1"}, {**say("y"), "id": "msg_1"}]
        ),
        "bad metadata": lambda: store.conversations.create(metadata={"k": "v" * 513}),
        "too many metadata keys": lambda: store.conversations.update(
            conversation, metadata={str(n): "v" for n in range(17)}
        ),
        "a cursor of another conversation": lambda: store.conversations.items.list(conversation, after=foreign),
        "a response with a bad item": lambda: store.responses.create(model="m", input=[{"type": "spell"}]),
        "a response with both a conversation and a previous": lambda: store.responses.create(
            model="m", input="x", conversation=conversation, previous_response_id=response
        ),
        "a response with a bad temperature": lambda: store.responses.create(model="m", input="x", temperature=3),
        "a response with bad metadata": lambda: store.responses.create(model="m", input="x", metadata={"k": 1}),  # type: ignore[dict-item]
        "a bad output item": lambda: store.responses.add_output_item(response, item={"type": "message"}),
        "a bad error code": lambda: store.responses.fail(response, code="oops", message="x"),
        "a bad incomplete reason": lambda: store.responses.mark_incomplete(response, reason="bored"),
        "bad usage": lambda: store.responses.complete(response, usage={"input_tokens": -1, "output_tokens": 1}),
        "text that is not a string": lambda: store.responses.append_text(response, item_id="msg_x", text=1),  # type: ignore[arg-type]
        "a NUL character": lambda: store.conversations.create(items=[say("a\x00b")]),
    }


def test_bad_input_is_refused_with_validation_error_and_writes_nothing(store: Store) -> None:
    conversation = store.conversations.create(items=[say("a")]).id
    other = store.conversations.create(items=[say("b")]).id
    response = running(store)
    before = snapshot(store)
    for name, call in bad_calls(store, conversation, other, response).items():
        with pytest.raises(ValidationError):
            call()
        assert snapshot(store) == before, name


def test_missing_objects_are_not_found_and_nothing_is_written(store: Store) -> None:
    before = snapshot(store)
    calls: list[Callable[[], Any]] = [
        lambda: store.conversations.items.create("conv_missing", items=[say("x")]),
        lambda: store.responses.create(model="m", input="x", conversation="conv_missing"),
        lambda: store.responses.create(model="m", input="x", previous_response_id="resp_missing"),
        lambda: store.responses.complete("resp_missing"),
        lambda: store.conversations.delete("conv_missing"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError):
            call()
    assert snapshot(store) == before


def test_every_item_type_the_sdk_defines_is_known() -> None:
    import typing

    from openai.types.conversations.conversation_item import ConversationItem

    union: tuple[Any, ...] = typing.get_args(typing.get_args(ConversationItem)[0])
    defined = {typing.get_args(model.model_fields["type"].annotation)[0] for model in union}
    assert defined == set(ITEM_TYPES)


def test_a_duplicate_item_id_in_a_conversation_is_a_conflict_and_writes_nothing(store: Store) -> None:
    conversation = store.conversations.create(items=[{**say("a"), "id": "msg_same"}])
    before = snapshot(store)
    with pytest.raises(ConflictError):
        store.conversations.items.create(conversation.id, items=[say("b"), {**say("c"), "id": "msg_same"}])
    assert snapshot(store) == before
