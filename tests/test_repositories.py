"""Create, get, list, update and delete on each OpenAI repository, and what deletes cascade to."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import FakeClock
from tests.factories import CALL, assistant_id, run_in, thread_id
from threadstore import ConflictError, NotFoundError, Store
from threadstore.fastsql import BATCH_PARAMETERS
from threadstore.openai.models import messages


def test_created_assistant_is_returned_by_get(store: Store) -> None:
    created = store.assistants.create(model="gpt-4o", name="a", metadata={"k": "v"})
    assert store.assistants.get(created.id) == created


def test_assistant_update_changes_only_the_fields_given(store: Store) -> None:
    created = store.assistants.create(model="gpt-4o", name="a", instructions="keep")
    updated = store.assistants.update(created.id, name="b", metadata={"x": "y"})
    assert (updated.name, updated.instructions, updated.metadata) == ("b", "keep", {"x": "y"})
    assert store.assistants.get(created.id) == updated


def test_assistant_update_can_clear_a_field_to_null(store: Store) -> None:
    created = store.assistants.create(model="gpt-4o", name="a")
    assert store.assistants.update(created.id, name=None).name is None


def test_deleted_assistant_is_gone_but_its_runs_keep_its_id(store: Store) -> None:
    run = run_in(store, "completed")
    store.assistants.delete(run.assistant_id)
    with pytest.raises(NotFoundError):
        store.assistants.get(run.assistant_id)
    assert store.runs.get(run.id).assistant_id == run.assistant_id
    assert run.assistant_id not in [a.id for a in store.assistants.list()]


def test_a_deleted_assistant_cannot_start_runs(store: Store) -> None:
    assistant = assistant_id(store)
    store.assistants.delete(assistant)
    with pytest.raises(NotFoundError):
        store.runs.create(thread_id(store), assistant_id=assistant)


def test_thread_created_with_messages_holds_them_in_order(store: Store) -> None:
    thread = store.threads.create(
        messages=[{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}]
    )
    texts = [m.content[0]["text"]["value"] for m in store.messages.list(thread.id, order="asc")]
    assert texts == ["one", "two"]


def test_thread_update_replaces_metadata(store: Store) -> None:
    thread = store.threads.create(metadata={"a": "1"})
    assert store.threads.update(thread.id, metadata={"b": "2"}).metadata == {"b": "2"}
    assert store.threads.get(thread.id).metadata == {"b": "2"}


def test_deleting_a_thread_deletes_its_messages_runs_and_steps(store: Store) -> None:
    run = run_in(store, "in_progress")
    message = store.messages.create(run.thread_id, role="assistant", content="x", run_id=run.id)
    step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": [CALL]})
    store.threads.delete(run.thread_id)
    gets: list[tuple[Callable[[str], object], str]] = [
        (store.threads.get, run.thread_id),
        (store.messages.get, message.id),
        (store.runs.get, run.id),
        (store.run_steps.get, step.id),
    ]
    for get, object_id in gets:
        with pytest.raises(NotFoundError):
            get(object_id)


def test_deleting_a_run_deletes_its_steps_and_keeps_its_messages(store: Store) -> None:
    run = run_in(store, "in_progress")
    message = store.messages.create(run.thread_id, role="assistant", content="x", run_id=run.id)
    step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": [CALL]})
    store.run_steps.fail(step.id, code="server_error", message="x", usage={"prompt_tokens": 1, "completion_tokens": 1})
    store.runs.complete(run.id)
    store.runs.delete(run.id)
    with pytest.raises(NotFoundError):
        store.run_steps.get(step.id)
    assert store.messages.get(message.id).run_id is None


def test_deleting_a_step_deletes_its_details_error_and_usage(store: Store) -> None:
    import sqlalchemy as sa

    from threadstore.openai.models import run_step_details, run_step_last_errors, run_step_usages

    run = run_in(store, "in_progress")
    step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": [CALL]})
    store.run_steps.fail(step.id, code="server_error", message="x", usage={"prompt_tokens": 1, "completion_tokens": 2})
    store.run_steps.delete(step.id)
    with store.engine.connect() as connection:
        for table in (run_step_details, run_step_last_errors, run_step_usages):
            assert connection.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0


def test_message_get_with_another_threads_id_is_not_found(store: Store) -> None:
    message = store.messages.create(thread_id(store), role="user", content="x")
    with pytest.raises(NotFoundError):
        store.messages.get(message.id, thread_id=thread_id(store))


def test_message_update_replaces_metadata(store: Store) -> None:
    message = store.messages.create(thread_id(store), role="user", content="x", metadata={"a": "1"})
    assert store.messages.update(message.id, metadata={"b": "2"}).metadata == {"b": "2"}


def test_message_delete_removes_it_from_the_list(store: Store) -> None:
    thread = thread_id(store)
    kept = store.messages.create(thread, role="user", content="keep")
    gone = store.messages.create(thread, role="user", content="drop")
    assert store.messages.delete(gone.id).to_api()["object"] == "thread.message.deleted"
    assert [m.id for m in store.messages.list(thread)] == [kept.id]


def test_messages_can_be_listed_by_run(store: Store) -> None:
    run = run_in(store, "in_progress")
    by_run = store.messages.create(run.thread_id, role="assistant", content="x", run_id=run.id)
    store.runs.complete(run.id)
    store.messages.create(run.thread_id, role="user", content="later")
    assert [m.id for m in store.messages.list(run.thread_id, run_id=run.id)] == [by_run.id]


def test_message_naming_a_run_of_another_thread_is_refused(store: Store) -> None:
    run = run_in(store, "in_progress")
    with pytest.raises(NotFoundError):
        store.messages.create(thread_id(store), role="assistant", content="x", run_id=run.id)


def test_message_created_completed_is_stamped_completed_at(store: Store, clock: FakeClock) -> None:
    message = store.messages.create(thread_id(store), role="user", content="x")
    assert (message.status, message.completed_at) == ("completed", clock.seconds)


def test_run_update_replaces_metadata(store: Store) -> None:
    run = run_in(store, "queued")
    assert store.runs.update(run.id, metadata={"k": "v"}).metadata == {"k": "v"}


def test_runs_are_listed_per_thread(store: Store) -> None:
    first = run_in(store, "completed")
    run_in(store, "completed")
    assert [r.id for r in store.runs.list(first.thread_id)] == [first.id]


def test_a_second_active_run_on_a_thread_is_refused(store: Store) -> None:
    run = run_in(store, "queued")
    with pytest.raises(ConflictError):
        store.runs.create(run.thread_id, assistant_id=run.assistant_id)


def test_run_step_type_follows_its_details(store: Store) -> None:
    run = run_in(store, "in_progress")
    message = store.messages.create(run.thread_id, role="assistant", content="x", run_id=run.id)
    details = {"type": "message_creation", "message_creation": {"message_id": message.id}}
    step = store.run_steps.create(run.id, step_details=details)
    assert step.type == "message_creation"
    assert step.step_details == details
    assert (step.thread_id, step.assistant_id) == (run.thread_id, run.assistant_id)


def test_run_step_naming_a_message_of_another_thread_is_refused(store: Store) -> None:
    run = run_in(store, "in_progress")
    other = store.messages.create(thread_id(store), role="user", content="x")
    with pytest.raises(NotFoundError):
        store.run_steps.create(
            run.id, step_details={"type": "message_creation", "message_creation": {"message_id": other.id}}
        )


def test_run_step_tool_call_without_an_id_gets_one(store: Store) -> None:
    run = run_in(store, "in_progress")
    call = {"type": "function", "function": {"name": "f", "arguments": "{}"}}
    step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": [call]})
    assert step.step_details["tool_calls"][0]["id"].startswith("call_")


def test_run_steps_are_listed_per_run_and_updated(store: Store) -> None:
    run = run_in(store, "in_progress")
    step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": []})
    assert [s.id for s in store.run_steps.list(run.id)] == [step.id]
    assert store.run_steps.update(step.id, metadata={"k": "v"}).metadata == {"k": "v"}


def test_ids_carry_the_api_prefixes(store: Store) -> None:
    run = run_in(store, "in_progress")
    message = store.messages.create(run.thread_id, role="assistant", content="x", run_id=run.id)
    step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": []})
    prefixes = [run.assistant_id, run.thread_id, message.id, run.id, step.id]
    assert [p.split("_")[0] for p in prefixes] == ["asst", "thread", "msg", "run", "step"]


def test_work_in_a_transaction_commits_together(store: Store) -> None:
    with store.transaction() as tx:
        thread = tx.threads.create()
        tx.messages.create(thread.id, role="user", content="x")
    assert len(store.messages.list(thread.id)) == 1


def test_a_transaction_that_raises_writes_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        thread = tx.threads.create()
        raise RuntimeError("abort")
    with pytest.raises(NotFoundError):
        store.threads.get(thread.id)


def test_objects_stay_readable_after_their_transaction(store: Store) -> None:
    assistant = assistant_id(store)
    with store.transaction() as tx:
        run = tx.runs.create(tx.threads.create().id, assistant_id=assistant)
    assert run.to_api()["status"] == "queued"


def test_create_many_adds_messages_in_order_in_one_transaction(store: Store) -> None:
    thread = thread_id(store)
    made = store.messages.create_many(thread, [{"role": "user", "content": str(i)} for i in range(50)])
    listed = store.messages.list(thread, order="asc", limit=100)
    assert [m.id for m in listed] == [m.id for m in made]
    assert [m.content[0]["text"]["value"] for m in listed] == [str(i) for i in range(50)]


def test_create_many_stores_each_message_exactly_across_many_statements(store: Store) -> None:
    # Enough messages for several multi-row INSERTs and a remainder, each with its own values.
    thread = thread_id(store)
    count = 3 * (BATCH_PARAMETERS // len(messages.c)) + 7
    batch = [
        {
            "role": "assistant" if i % 3 else "user",
            "content": [{"type": "text", "text": {"value": f"m{i}", "annotations": []}}] if i % 2 else f"m{i}",
            "attachments": [{"file_id": f"file_{i}", "tools": [{"type": "file_search"}]}] if i % 5 == 0 else None,
            "metadata": {"n": str(i)} if i % 4 == 0 else None,
        }
        for i in range(count)
    ]
    made = store.messages.create_many(thread, batch)
    stored = [store.messages.get(m.id).to_api() for m in made]
    assert stored == [m.to_api() for m in made]
    assert [m["content"][0]["text"]["value"] for m in stored] == [f"m{i}" for i in range(count)]
    assert [m["metadata"] for m in stored] == [{"n": str(i)} if i % 4 == 0 else {} for i in range(count)]


def test_create_many_with_one_bad_message_writes_none(store: Store) -> None:
    from threadstore import ValidationError

    thread = thread_id(store)
    with pytest.raises(ValidationError):
        store.messages.create_many(thread, [{"role": "user", "content": "ok"}, {"role": "robot", "content": "x"}])
    assert len(store.messages.list(thread)) == 0


def test_create_many_is_refused_while_a_run_is_active(store: Store) -> None:
    run = run_in(store, "queued")
    with pytest.raises(ConflictError):
        store.messages.create_many(run.thread_id, [{"role": "user", "content": "x"}])
