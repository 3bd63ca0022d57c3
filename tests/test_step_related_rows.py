"""A run step names its details, last error and usage by foreign key (the seed's three columns),
and no delete leaves a related row that no step names, on either backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from tests.factories import assistant_id, run_in, thread_id
from threadstore import Store
from threadstore.errors import InvalidTransitionError
from threadstore.openai.models import run_step_details, run_step_last_errors, run_step_usages, run_steps

CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}", "output": None}}
USAGE = {"prompt_tokens": 1, "completion_tokens": 2}
RELATED = {"step_details": run_step_details, "last_error": run_step_last_errors, "usage": run_step_usages}


def orphans(store: Store) -> dict[str, int]:
    """For each related table, how many of its rows no step names."""
    counts = {}
    with store.engine.connect() as connection:
        for column, table in RELATED.items():
            named = sa.select(run_steps.c[column]).where(run_steps.c[column].is_not(None))
            query = sa.select(sa.func.count()).select_from(table).where(table.c.id.not_in(named))
            counts[table.name] = connection.execute(query).scalar_one()
    return counts


def related_counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as connection:
        return {
            table.name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in RELATED.values()
        }


def fill(store: Store, thread: str) -> str:
    """A run on `thread` with a failed tool step (details, error, usage), a completed message step
    and an in-progress step; the run then fails, which ends the last step with the run's error."""
    run = store.runs.start(store.runs.create(thread, assistant_id=assistant_id(store)).id)
    failed = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": [CALL]})
    store.run_steps.fail(failed.id, code="server_error", message="boom", usage=USAGE)
    message = store.messages.create(thread, role="assistant", content="hi", run_id=run.id)
    done = store.run_steps.create(
        run.id, step_details={"type": "message_creation", "message_creation": {"message_id": message.id}}
    )
    store.run_steps.complete(done.id, usage=USAGE)
    store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": []})
    store.runs.fail(run.id, code="server_error", message="run failed")
    return run.id


def test_a_step_names_its_details_error_and_usage_by_their_integer_keys(store: Store) -> None:
    run_id = fill(store, thread_id(store))
    with store.engine.connect() as connection:
        keys = connection.execute(
            sa.select(run_steps.c.status, run_steps.c.step_details, run_steps.c.last_error, run_steps.c.usage)
            .where(run_steps.c.run_id == run_id)
            .order_by(run_steps.c.created_at, run_steps.c.id)
        ).all()
    assert [
        (status, details is not None, error is not None, usage is not None) for status, details, error, usage in keys
    ] == [
        ("failed", True, True, True),
        ("completed", True, False, True),
        ("failed", True, True, False),  # ended by its run's failure, with a copy of the run's error
    ]
    assert all(isinstance(key, int) for row in keys for key in row[1:] if key is not None)


def test_the_steps_to_api_is_unchanged_by_where_its_parts_live(store: Store) -> None:
    run_id = fill(store, thread_id(store))
    first = store.run_steps.list(run_id, order="asc").data[0].to_api()
    assert first["step_details"] == {"type": "tool_calls", "tool_calls": [CALL]}
    assert first["last_error"] == {"code": "server_error", "message": "boom"}
    assert first["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}


DELETES: dict[str, Callable[[Store, str, str], object]] = {
    "a step": lambda store, thread, run: [store.run_steps.delete(s.id) for s in store.run_steps.list(run).data],
    "a run": lambda store, thread, run: store.runs.delete(run),
    "a thread": lambda store, thread, run: store.threads.delete(thread),
    "a message a step created": lambda store, thread, run: [
        store.messages.delete(m.id) for m in store.messages.list(thread).data
    ],
    "the run's assistant": lambda store, thread, run: store.assistants.delete(store.runs.get(run).assistant_id),
}


@pytest.mark.parametrize("path", DELETES)
def test_no_delete_leaves_a_related_row_that_no_step_names(store: Store, path: str) -> None:
    kept = fill(store, thread_id(store))  # another thread's rows, which no delete here may touch
    thread = thread_id(store)
    run = fill(store, thread)
    DELETES[path](store, thread, run)
    assert orphans(store) == {table.name: 0 for table in RELATED.values()}
    assert store.run_steps.list(kept).data  # the other thread's steps keep their rows
    assert related_counts(store)[run_step_details.name] >= len(store.run_steps.list(kept).data)


def test_deleting_a_run_deletes_its_steps_related_rows_in_the_database(store: Store) -> None:
    run = fill(store, thread_id(store))
    before = related_counts(store)
    store.runs.delete(run)
    assert before == {run_step_details.name: 3, run_step_last_errors.name: 2, run_step_usages.name: 2}
    assert related_counts(store) == {table.name: 0 for table in RELATED.values()}


def test_a_related_row_cannot_be_named_by_two_steps(store: Store) -> None:
    run = fill(store, thread_id(store))
    steps = store.run_steps.list(run).data
    with store.engine.begin() as connection, pytest.raises(sa.exc.IntegrityError):
        details = connection.execute(sa.select(run_steps.c.step_details).where(run_steps.c.id == steps[0].id)).scalar()
        connection.execute(sa.update(run_steps).where(run_steps.c.id == steps[1].id).values(step_details=details))


def test_a_step_without_details_is_refused_by_the_database(store: Store) -> None:
    run = fill(store, thread_id(store))
    step = store.run_steps.list(run).data[0]
    with store.engine.begin() as connection, pytest.raises(sa.exc.IntegrityError):
        connection.execute(sa.update(run_steps).where(run_steps.c.id == step.id).values(step_details=None))


def test_an_in_progress_step_cannot_hold_a_usage(store: Store) -> None:
    run = store.runs.start(run_in(store, "queued").id)
    step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": []})
    with store.engine.begin() as connection:
        usage = connection.execute(
            sa.insert(run_step_usages)
            .values(run_id=run.id, prompt_tokens=1, completion_tokens=1, total_tokens=2)
            .returning(run_step_usages.c.id)
        ).scalar_one()
    with store.engine.begin() as connection, pytest.raises(sa.exc.IntegrityError):
        connection.execute(sa.update(run_steps).where(run_steps.c.id == step.id).values(usage=usage))


def test_a_refused_end_writes_no_related_row_inside_a_transaction_that_goes_on(store: Store) -> None:
    run = store.runs.start(run_in(store, "queued").id)
    step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": []})
    store.run_steps.complete(step.id, usage=USAGE)
    before = related_counts(store)
    with store.transaction() as tx:
        with pytest.raises(InvalidTransitionError):
            tx.run_steps.fail(step.id, code="server_error", message="late", usage=USAGE)
        tx.threads.create()
    assert related_counts(store) == before
