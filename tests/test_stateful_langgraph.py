"""The LangGraph run lifecycle as a stateful property: the store against a plain model, on every
backend (300 examples in CI). A planted bug, a finish that ignores its attempt, is caught."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis.stateful import run_state_machine_as_test

from tests.stateful_langgraph import make_machine
from tests.test_stateful_openai import HUNT, SETTINGS, OpenStore, open_store  # noqa: F401  (fixture)
from threadstore import transitions
from threadstore.langgraph import runs as langgraph_runs


def test_store_agrees_with_the_model_of_langgraph_runs(open_store: OpenStore) -> None:  # noqa: F811
    run_state_machine_as_test(make_machine(open_store), settings=SETTINGS)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_finish_that_ignores_its_attempt_is_caught(
    open_store: OpenStore,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = transitions.move  # what the LangGraph runs repository calls

    def unfenced(*args: Any, where: Any = (), **kwargs: Any) -> Any:
        return real(*args, **kwargs)

    monkeypatch.setattr(langgraph_runs, "move", unfenced)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(make_machine(open_store), settings=HUNT)
