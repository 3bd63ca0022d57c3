"""The OpenAI lifecycles as a stateful property: the store against a plain model, on every backend.

CI runs 300 examples per backend (THREADSTORE_STATEFUL_EXAMPLES overrides; 50 locally).
The planted-bug tests show the machine can fail: a wrong transition or a dropped cascade in the
store's code is caught.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.conftest import OPEN_STORE, FakeClock, empty_postgres, postgres_url_in_schema
from tests.stateful_openai import make_machine
from threadstore import Store, transitions
from threadstore.lifecycle import Machine
from threadstore.openai import run_verbs
from threadstore.openai.states import RUN

EXAMPLES = int(os.environ.get("THREADSTORE_STATEFUL_EXAMPLES", 300 if os.environ.get("CI") else 50))
SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# A planted bug must be found without help: no shrinking, no replay of earlier failures.
HUNT = settings(SETTINGS, max_examples=500, phases=[Phase.generate], derandomize=True)

OpenStore = Callable[[FakeClock], Store]


@pytest.fixture
def open_store(backend: str, store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    """Opens an empty, migrated store for each example of the state machine."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        numbers = itertools.count()

        def open_sqlite(clock: FakeClock) -> Store:
            path = tmp_path / f"example{next(numbers)}.db"
            shutil.copy(template, path)
            return OPEN_STORE[store_kind](f"sqlite:///{path}", clock=clock, migrate_on_open=False)

        return open_sqlite
    url = postgres_url_in_schema(request.getfixturevalue("postgres_session_schema"))

    def open_postgres(clock: FakeClock) -> Store:
        empty_postgres(url)
        return OPEN_STORE[store_kind](url, clock=clock)

    request.addfinalizer(lambda: empty_postgres(url))  # leave nothing for the next test
    return open_postgres


def test_store_agrees_with_the_model_of_every_lifecycle(open_store: OpenStore) -> None:
    run_state_machine_as_test(make_machine(open_store), settings=SETTINGS)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_planted_wrong_transition_is_caught(open_store: OpenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    real = transitions.move  # what run_verbs calls

    def cancelled_runs_may_start(raw: Any, table: Any, machine: Machine, *args: Any, **kwargs: Any) -> Any:
        if machine is not RUN:
            return real(raw, table, machine, *args, **kwargs)
        wrong = {**machine.transitions, "cancelled": frozenset({"in_progress"})}
        verbs = {**machine.verbs, "start": {"in_progress": frozenset({"queued", "cancelled"})}}
        return real(raw, table, replace(machine, transitions=wrong, verbs=verbs), *args, **kwargs)

    monkeypatch.setattr(run_verbs, "move", cancelled_runs_may_start)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(make_machine(open_store), settings=HUNT)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_dropped_cascade_is_caught(open_store: OpenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_verbs, "end_children", lambda *args: None)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(make_machine(open_store), settings=HUNT)
