"""The response lifecycle as a stateful property: the store against a plain model, on every
backend and store. Planted bugs, a move the machine forbids and a completion that forgets its
conversation, are caught."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis.stateful import run_state_machine_as_test

from tests.stateful_responses import make_machine
from tests.test_stateful_openai import HUNT, SETTINGS, OpenStore, open_store  # noqa: F401  (fixture)
from threadstore import transitions
from threadstore.lifecycle import Machine
from threadstore.responses import verbs
from threadstore.responses.states import RESPONSE


def test_store_agrees_with_the_model_of_responses(open_store: OpenStore) -> None:  # noqa: F811
    run_state_machine_as_test(make_machine(open_store), settings=SETTINGS)


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("store_kind", ["sync"])
def test_a_planted_wrong_transition_is_caught(
    open_store: OpenStore,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = transitions.move  # what the response verbs call

    def cancelled_responses_may_complete(raw: Any, table: Any, machine: Machine, *args: Any, **kwargs: Any) -> Any:
        wrong = {**machine.transitions, "cancelled": frozenset({"completed"})}
        moves = {**machine.verbs, "complete": {"completed": frozenset({"in_progress", "cancelled"})}}
        return real(raw, table, replace(RESPONSE, transitions=wrong, verbs=moves), *args, **kwargs)

    monkeypatch.setattr(verbs, "move", cancelled_responses_may_complete)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(make_machine(open_store), settings=HUNT)


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("store_kind", ["sync"])
def test_a_completion_that_forgets_its_conversation_is_caught(
    open_store: OpenStore,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(verbs, "_append_to_conversation", lambda *args: None)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(make_machine(open_store), settings=HUNT)
