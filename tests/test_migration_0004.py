"""Migration 0004 (the run step's foreign keys) keeps every step whole, both ways, on both backends.

A database at head is filled through the store, then taken down to 0003, where each step is read
back through 0003's own schema (details, error and usage keyed by `step_id`), and up again to
head, where the store reads it: every step's `to_api()` is the same at all three points.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from tests.conftest import FakeClock
from tests.test_step_related_rows import USAGE, fill, orphans
from threadstore import Store, migrate
from threadstore.openai.api import RunStep
from threadstore.records import Json
from threadstore.schema import json_type

# Each step as 0003 stores it, with the columns RunStep.from_row reads.
STEPS_AT_0003 = sa.text(
    "SELECT s.*, d.message_id, d.tool_calls, e.code AS error_code, e.message AS error_message,"
    " u.prompt_tokens, u.completion_tokens, u.total_tokens"
    " FROM run_steps s JOIN run_step_details d ON d.step_id = s.id"
    " LEFT JOIN run_step_last_errors e ON e.step_id = s.id"
    " LEFT JOIN run_step_usages u ON u.step_id = s.id"
).columns(metadata=json_type(), tool_calls=json_type())


def steps_at_0003(engine: Engine) -> dict[str, Json]:
    with engine.connect() as connection:
        rows = connection.execute(STEPS_AT_0003).mappings().all()
    return {row["id"]: RunStep.from_row(row).to_api() for row in rows}


def steps_at_head(url: URL) -> dict[str, Json]:
    with Store(url) as store, store.engine.connect() as connection:
        ids = connection.execute(sa.text("SELECT id FROM threadstore_run_steps")).scalars().all()
        return {step_id: store.run_steps.get(step_id).to_api() for step_id in ids}


def filled(url: URL, engine: Engine) -> dict[str, Json]:
    """Steps of every kind on three threads, all created in the same second; their API objects."""
    migrate.upgrade(engine)
    with Store(url, clock=FakeClock()) as store:
        for _ in range(3):
            fill(store, store.threads.create().id)
    steps = steps_at_head(url)
    assert {bool(step["last_error"]) for step in steps.values()} == {True, False}
    assert {bool(step["usage"]) for step in steps.values()} == {True, False}
    return steps


def test_downgrading_to_0003_keeps_every_step_with_its_details_error_and_usage(empty_url: URL, engine: Engine) -> None:
    steps = filled(empty_url, engine)
    migrate.downgrade(engine, "0003")
    assert steps_at_0003(engine) == steps


def test_upgrading_from_0003_keeps_every_steps_api_object(empty_url: URL, engine: Engine) -> None:
    steps = filled(empty_url, engine)
    migrate.downgrade(engine, "0003")
    migrate.upgrade(engine)
    assert steps_at_head(empty_url) == steps
    with Store(empty_url) as store:
        assert orphans(store) == dict.fromkeys(orphans(store), 0)


def test_after_the_upgrade_new_steps_take_keys_of_their_own(empty_url: URL, engine: Engine) -> None:
    steps = filled(empty_url, engine)
    migrate.downgrade(engine, "0003")
    migrate.upgrade(engine)
    with Store(empty_url) as store:
        thread = store.threads.create().id
        run = store.runs.start(store.runs.create(thread, assistant_id=next(iter(steps.values()))["assistant_id"]).id)
        step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": []})
        new = store.run_steps.fail(step.id, code="server_error", message="new", usage=USAGE).to_api()
    assert new["last_error"] == {"code": "server_error", "message": "new"}
    assert steps_at_head(empty_url) == {**steps, step.id: new}
