"""Which moves each repository verb may make, spelled out here as the README states them, and
compared with the verbs in the machines' data that the one writer of status reads."""

from __future__ import annotations

import pytest

from threadstore.langgraph import states as langgraph
from threadstore.lifecycle import Machine
from threadstore.openai import states as openai
from threadstore.responses import states as responses

ACTIVE = {"queued", "in_progress", "requires_action", "cancelling"}

OPENAI_RUN_VERBS = {
    "start": {"in_progress": {"queued"}},
    "claim_next": {"in_progress": {"queued"}},
    "require_action": {"requires_action": {"in_progress"}},
    "submit_tool_outputs": {"queued": {"requires_action"}},
    "cancel": {"cancelled": {"queued", "requires_action"}, "cancelling": {"in_progress"}},
    "mark_cancelled": {"cancelled": {"cancelling"}},
    "complete": {"completed": {"in_progress", "cancelling"}},
    "fail": {"failed": ACTIVE},
    "mark_incomplete": {"incomplete": {"in_progress", "cancelling"}},
    "expire": {"expired": ACTIVE},
    "expire_overdue": {"expired": ACTIVE},
}
RUN_STEP_VERBS = {
    "complete": {"completed": {"in_progress"}},
    "fail": {"failed": {"in_progress"}},
    "cancel": {"cancelled": {"in_progress"}},
    "expire": {"expired": {"in_progress"}},
    "end_with_run": {status: {"in_progress"} for status in ("completed", "cancelled", "failed", "expired")},
}
MESSAGE_VERBS = {
    "complete": {"completed": {"in_progress"}},
    "mark_incomplete": {"incomplete": {"in_progress"}},
    "end_with_run": {"completed": {"in_progress"}, "incomplete": {"in_progress"}},
}
LANGGRAPH_RUN_VERBS = {
    "claim_next": {"running": {"pending"}},
    "finish": {status: {"running"} for status in ("success", "error", "timeout", "interrupted")},
    "cancel": {"interrupted": {"pending", "running"}},
    "interrupt": {"interrupted": {"pending", "running"}},
    "requeue_stale": {"pending": {"running"}, "error": {"running"}},
}

RESPONSE_VERBS = {
    "start": {"in_progress": {"queued"}},
    "claim_next": {"in_progress": {"queued"}},
    "complete": {"completed": {"in_progress"}},
    "fail": {"failed": {"queued", "in_progress"}},
    "mark_incomplete": {"incomplete": {"in_progress"}},
    "cancel": {"cancelled": {"queued", "in_progress"}},
}


@pytest.mark.parametrize(
    ("machine", "verbs"),
    [
        pytest.param(openai.RUN, OPENAI_RUN_VERBS, id="openai run"),
        pytest.param(openai.RUN_STEP, RUN_STEP_VERBS, id="run step"),
        pytest.param(openai.MESSAGE, MESSAGE_VERBS, id="message"),
        pytest.param(langgraph.RUN, LANGGRAPH_RUN_VERBS, id="langgraph run"),
        pytest.param(responses.RESPONSE, RESPONSE_VERBS, id="response"),
    ],
)
def test_each_verb_moves_as_specified(machine: Machine, verbs: dict[str, dict[str, set[str]]]) -> None:
    stored = {
        verb: {target: set(sources) for target, sources in targets.items()} for verb, targets in machine.verbs.items()
    }
    assert stored == verbs


def test_messages_are_created_in_progress_or_completed() -> None:
    assert openai.MESSAGE.creatable == {"in_progress", "completed"}
    assert openai.RUN.creatable == {"queued"}
    assert langgraph.RUN.creatable == {"pending"}


def test_a_langgraph_run_move_always_touches_updated_at() -> None:
    assert langgraph.RUN.touches == ("updated_at",)


def test_a_verb_outside_the_machine_is_refused_when_the_machine_is_built() -> None:
    with pytest.raises(ValueError, match="not in the machine"):
        Machine(
            kind="thing",
            initial="a",
            transitions={"a": frozenset({"b"})},
            verbs={"undo": {"a": frozenset({"b"})}},
        )
