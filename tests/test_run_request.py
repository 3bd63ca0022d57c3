"""The API's create-run request, whole: every field `runs.create` accepts and where each is kept,
and create-thread-and-run in one transaction."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from openai.types.beta.thread_create_and_run_params import ThreadCreateAndRunParamsBase
from openai.types.beta.threads import Run as ApiRun
from openai.types.beta.threads.run_create_params import RunCreateParamsBase

from tests.conftest import snapshot
from tests.factories import assistant_id, thread_id
from threadstore import NotFoundError, Store, ValidationError
from threadstore.openai.runs import RunOptions, Runs
from threadstore.openai.threads import Threads
from threadstore.types import RunStepInclude

INCLUDE: RunStepInclude = "step_details.tool_calls[*].file_search.results[*].content"


def test_runs_create_takes_every_field_of_the_apis_request() -> None:
    request = set(RunCreateParamsBase.__annotations__) - {"stream"}
    assert request <= set(inspect.signature(Runs.create).parameters)


def test_create_and_run_takes_every_run_field_of_the_apis_request() -> None:
    request = set(ThreadCreateAndRunParamsBase.__annotations__) - {"stream", "tool_resources"}
    accepted = {"assistant_id", "thread", *RunOptions.__annotations__}
    assert request <= accepted
    assert set(RunOptions.__annotations__) <= set(inspect.signature(Runs.create).parameters)
    assert {"assistant_id", "thread", "run"} == set(inspect.signature(Threads.create_and_run).parameters) - {"self"}


def test_additional_instructions_are_appended_to_the_assistants(store: Store) -> None:
    assistant = store.assistants.create(model="gpt-4o", instructions="Be brief.")
    run = store.runs.create(thread_id(store), assistant_id=assistant.id, additional_instructions="Answer in French.")
    assert run.instructions == "Be brief.\n\nAnswer in French."
    assert store.runs.get(run.id).to_api()["instructions"] == "Be brief.\n\nAnswer in French."


def test_additional_instructions_alone_are_the_instructions(store: Store) -> None:
    assistant = store.assistants.create(model="gpt-4o")
    run = store.runs.create(thread_id(store), assistant_id=assistant.id, additional_instructions="Answer in French.")
    assert run.instructions == "Answer in French."


def test_additional_messages_are_added_before_the_run(store: Store) -> None:
    thread = thread_id(store)
    run = store.runs.create(
        thread,
        assistant_id=assistant_id(store),
        additional_messages=[
            {"role": "user", "content": "Hello", "metadata": {"k": "v"}},
            {"role": "assistant", "content": [{"type": "text", "text": "Hi"}]},
        ],
    )
    messages = store.messages.list(thread, order="asc").data
    assert [(m.role, m.to_api()["content"][0]["text"]["value"]) for m in messages] == [
        ("user", "Hello"),
        ("assistant", "Hi"),
    ]
    assert messages[0].metadata == {"k": "v"}
    assert all(m.run_id is None for m in messages)
    assert store.runs.get(run.id).status == "queued"


@pytest.mark.parametrize(
    "bad",
    [
        {"additional_messages": [{"role": "system", "content": "x"}]},
        {"additional_messages": [{"role": "user"}]},
        {"additional_messages": ["Hello"]},
        {"additional_messages": {"role": "user", "content": "x"}},
        {"additional_instructions": 7},
        {"reasoning_effort": "extreme"},
        {"include": ["step_details"]},
        {"include": INCLUDE},
    ],
)
def test_a_bad_request_field_writes_nothing(store: Store, bad: dict[str, Any]) -> None:
    thread, assistant = thread_id(store), assistant_id(store)
    before = snapshot(store)
    with pytest.raises(ValidationError):
        store.runs.create(thread, assistant_id=assistant, **bad)
    assert snapshot(store) == before


def test_additional_messages_are_not_written_when_the_run_is_refused(store: Store) -> None:
    thread = thread_id(store)
    before = snapshot(store)
    with pytest.raises(NotFoundError):
        store.runs.create(
            thread, assistant_id="asst_missing", additional_messages=[{"role": "user", "content": "Hello"}]
        )
    assert snapshot(store) == before


def test_reasoning_effort_and_include_are_kept_on_the_run(store: Store) -> None:
    run = store.runs.create(
        thread_id(store), assistant_id=assistant_id(store), reasoning_effort="low", include=[INCLUDE]
    )
    stored = store.runs.get(run.id)
    assert (stored.reasoning_effort, stored.include) == ("low", [INCLUDE])
    assert (run.reasoning_effort, run.include) == ("low", [INCLUDE])


def test_a_run_with_every_request_field_has_the_apis_shape(store: Store) -> None:
    run = store.runs.create(
        thread_id(store),
        assistant_id=assistant_id(store),
        model="gpt-4o-mini",
        instructions="Be brief.",
        additional_instructions="Answer in French.",
        additional_messages=[{"role": "user", "content": "Hello"}],
        tools=[{"type": "code_interpreter"}],
        metadata={"k": "v"},
        temperature=0.2,
        top_p=0.9,
        max_prompt_tokens=1000,
        max_completion_tokens=500,
        truncation_strategy={"type": "last_messages", "last_messages": 4},
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        response_format={"type": "json_object"},
        reasoning_effort="high",
        include=[INCLUDE],
    )
    shape = store.runs.get(run.id).to_api()
    ApiRun.model_validate(shape)
    assert set(shape) == set(ApiRun.model_fields)
    assert shape["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert (shape["max_prompt_tokens"], shape["max_completion_tokens"], shape["parallel_tool_calls"]) == (
        1000,
        500,
        False,
    )
    assert shape["truncation_strategy"] == {"type": "last_messages", "last_messages": 4}


# --- create-thread-and-run ------------------------------------------------------------------------


def test_create_and_run_makes_the_thread_its_messages_and_its_run(store: Store) -> None:
    run = store.threads.create_and_run(
        assistant_id=assistant_id(store),
        thread={"messages": [{"role": "user", "content": "Hello"}], "metadata": {"user": "42"}},
        instructions="Be brief.",
        reasoning_effort="medium",
    )
    assert (run.status, run.instructions, run.reasoning_effort) == ("queued", "Be brief.", "medium")
    thread = store.threads.get(run.thread_id)
    assert thread.metadata == {"user": "42"}
    assert [m.role for m in store.messages.list(thread.id).data] == ["user"]
    ApiRun.model_validate(run.to_api())


def test_create_and_run_without_a_thread_makes_an_empty_one(store: Store) -> None:
    run = store.threads.create_and_run(assistant_id=assistant_id(store))
    assert store.messages.list(run.thread_id).data == []


@pytest.mark.parametrize(
    ("assistant", "thread", "error"),
    [
        ("asst_missing", {"messages": [{"role": "user", "content": "Hello"}]}, NotFoundError),
        (None, {"messages": [{"role": "tool", "content": "Hello"}]}, ValidationError),
        (None, {"name": "x"}, ValidationError),
        (None, [], ValidationError),
    ],
)
def test_create_and_run_refused_writes_nothing(
    store: Store, assistant: str | None, thread: Any, error: type[Exception]
) -> None:
    real = assistant_id(store)
    before = snapshot(store)
    with pytest.raises(error):
        store.threads.create_and_run(assistant_id=assistant or real, thread=thread)
    assert snapshot(store) == before
