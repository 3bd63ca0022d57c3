"""The public API's Literal types: each equals the data the store checks at run time, and mypy
refuses a wrong literal where a user passes one (tests/typing_misuse.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest

import threadstore
from threadstore import types
from threadstore.langgraph import states as langgraph_states
from threadstore.openai import content as openai_content
from threadstore.openai import states as openai_states

ROOT = Path(__file__).resolve().parents[1]
MISUSE = Path(__file__).with_name("typing_misuse.py")

# Each Literal type and the run-time data it must equal.
PAIRS: list[tuple[Any, Any]] = [
    (types.Role, openai_states.ROLES),
    (types.MessageStatus, openai_states.MESSAGE.statuses),
    (types.MessageIncompleteReason, openai_states.MESSAGE_INCOMPLETE_REASONS),
    (types.RunStatus, openai_states.RUN.statuses),
    (types.RunStepStatus, openai_states.RUN_STEP.statuses),
    (types.RunErrorCode, openai_states.RUN_ERROR_CODES),
    (types.StepErrorCode, openai_states.STEP_ERROR_CODES),
    (types.RunIncompleteReason, openai_states.RUN_INCOMPLETE_REASONS),
    (types.ReasoningEffort, openai_states.REASONING_EFFORTS),
    (types.RunStepInclude, openai_states.RUN_STEP_INCLUDES),
    (types.LangGraphThreadStatus, langgraph_states.THREAD_STATUSES),
    (types.LangGraphRunStatus, langgraph_states.RUN_STATUSES),
    (types.FinishStatus, langgraph_states.FINISH_STATUSES),
    (types.MultitaskStrategy, langgraph_states.MULTITASK_STRATEGIES),
    (types.CancelAction, langgraph_states.CANCEL_ACTIONS),
    (types.ThreadSortField, langgraph_states.THREAD_SORT_FIELDS),
]


@pytest.mark.parametrize(("literal", "data"), PAIRS, ids=[str(p[0]) for p in PAIRS])
def test_each_literal_type_equals_the_data_the_store_checks(literal: Any, data: Any) -> None:
    assert set(get_args(literal)) == set(data)


def test_the_content_part_types_name_every_content_type() -> None:
    named = {get_args(get_type_hints(part)["type"])[0] for part in get_args(types.MessageContentPart)}
    assert named == set(openai_content.CONTENT_TYPES)


def test_the_langgraph_result_types_are_exported() -> None:
    for name in ("LangGraphThread", "LangGraphRun", "Event"):
        assert name in threadstore.__all__
        assert getattr(threadstore, name).__module__.startswith("threadstore.")


def expected_errors() -> set[tuple[int, str]]:
    """The (line, error code) pairs the file's `# E: code` comments promise."""
    found = set()
    for number, line in enumerate(MISUSE.read_text().splitlines(), start=1):
        if (match := re.search(r"# E: ([a-z-]+)$", line)) is not None:
            found.add((number, match.group(1)))
    return found


@pytest.mark.slow
def test_mypy_refuses_each_wrong_literal_and_nothing_else() -> None:
    env = {**os.environ, "MYPYPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--show-error-codes", str(MISUSE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    reported = {
        (int(match.group(1)), match.group(2))
        for match in re.finditer(r"typing_misuse\.py:(\d+): error: .*\[([a-z-]+)\]$", result.stdout, re.MULTILINE)
    }
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(expected_errors()) >= 17
    assert reported == expected_errors(), result.stdout
