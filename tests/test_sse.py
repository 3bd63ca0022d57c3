"""End to end: the official `openai` client streams a run (Server-Sent Events) from a thin server
that reads nothing but `events.follow`, and a client that reconnects with `Last-Event-ID`
receives exactly the events it had not seen. The worker runs beside the server on the same
AsyncStore, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from openai.types.beta.assistant_stream_event import ThreadMessageDelta
from openai.types.beta.threads import TextDeltaBlock

from tests.conftest import FakeClock
from threadstore import AsyncStore

DONE = "event: done\ndata: [DONE]\n\n"  # how the API ends a stream


def server(store: AsyncStore, workers: list[asyncio.Task[None]]) -> FastAPI:
    app = FastAPI()

    async def frames(run_id: str, after: str | None) -> AsyncIterator[str]:
        async for event in store.events.follow(run_id=run_id, after=after, interval=0.01, timeout=10):
            yield event.to_sse()
        yield DONE

    @app.post("/v1/threads/{thread_id}/runs")
    async def create_run(thread_id: str, body: dict[str, Any]) -> StreamingResponse:
        run = await store.runs.create(thread_id, assistant_id=body["assistant_id"])
        workers.append(asyncio.create_task(work(store, thread_id, run.id)))
        return StreamingResponse(frames(run.id, None), media_type="text/event-stream")

    @app.get("/v1/threads/{thread_id}/runs/{run_id}/events")
    async def resume(run_id: str, request: Request) -> StreamingResponse:
        return StreamingResponse(frames(run_id, request.headers.get("last-event-id")), media_type="text/event-stream")

    return app


async def work(store: AsyncStore, thread_id: str, run_id: str) -> None:
    """A worker: starts the run, streams a reply into a message, completes the run."""
    await store.runs.start(run_id)
    message = await store.messages.create(thread_id, role="assistant", content="", run_id=run_id, status="in_progress")
    details = {"type": "message_creation", "message_creation": {"message_id": message.id}}
    step = await store.run_steps.create(run_id, step_details=details)
    for piece in ("Hel", "lo", "!"):
        await store.messages.append_text(message.id, text=piece)
    await store.run_steps.complete(step.id, usage={"prompt_tokens": 5, "completion_tokens": 3})
    await store.runs.complete(run_id, usage={"prompt_tokens": 5, "completion_tokens": 3})


def parse(body: str) -> list[tuple[str, str]]:
    """The (id, event) of each SSE frame of `body`, without the final done."""
    frames = []
    for frame in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
        if "id" in fields:
            frames.append((fields["id"], fields["event"]))
    return frames


@pytest.mark.filterwarnings("ignore:The Assistants API is deprecated")  # the SDK's own warning; servers still speak it
def test_the_openai_client_streams_a_run_and_a_reconnect_gets_exactly_the_rest(
    store_url: sa.URL, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with AsyncStore(store_url, clock=clock) as store:
            workers: list[asyncio.Task[None]] = []
            transport = httpx2.ASGITransport(app=server(store, workers))
            async with httpx2.AsyncClient(transport=transport, base_url="http://test") as http:
                client = openai.AsyncOpenAI(api_key="test", base_url="http://test/v1", http_client=http)
                assistant = await store.assistants.create(model="gpt-4o")
                thread = await store.threads.create()
                stream = await client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, stream=True)
                received = [event async for event in stream]
                await asyncio.gather(*workers)
                stored = await store.events.list(run_id=(await store.runs.list(thread.id)).data[0].id)
                assert [event.event for event in received] == [event.event for event in stored]
                assert received[-1].event == "thread.run.completed" and received[-1].data.status == "completed"
                text = "".join(
                    block.text.value or ""
                    for event in received
                    if isinstance(event, ThreadMessageDelta)
                    for block in event.data.delta.content or []
                    if isinstance(block, TextDeltaBlock) and block.text is not None
                )
                assert text == "Hello!"

                # A client that saw the first four events comes back with the last one's id.
                url = f"/v1/threads/{thread.id}/runs/{stored[0].run_id}/events"
                resumed = await http.get(url, headers={"Last-Event-ID": stored[3].id})
                assert parse(resumed.text) == [(event.id, event.event) for event in stored[4:]]
                assert resumed.text.endswith(DONE)

    asyncio.run(scenario())
