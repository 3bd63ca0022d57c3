"""End to end: the official `openai` client against a thin FastAPI server over AsyncStore, through
httpx's ASGI transport: conversations.create, conversations.items.create and list (auto-paginated),
responses.create(background=True) taken by a worker, responses.retrieve, responses.cancel and
responses.input_items.list, on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import openai
import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.conftest import FakeClock
from threadstore import AsyncStore, ConflictError, NotFoundError, ValidationError
from threadstore.types import Order


def server(store: AsyncStore) -> FastAPI:
    app = FastAPI()
    statuses = {NotFoundError: 404, ValidationError: 400, ConflictError: 409}
    for error, status in statuses.items():

        async def refuse(request: Request, refusal: Exception, status: int = status) -> JSONResponse:
            return JSONResponse({"error": {"message": str(refusal), "type": "invalid_request_error"}}, status)

        app.add_exception_handler(error, refuse)

    @app.post("/v1/conversations")
    async def create_conversation(body: dict[str, Any]) -> dict[str, Any]:
        created = await store.conversations.create(items=body.get("items"), metadata=body.get("metadata"))
        return created.to_api()

    @app.post("/v1/conversations/{conversation_id}/items")
    async def add_items(conversation_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return (await store.conversations.items.create(conversation_id, items=body["items"])).to_api()

    @app.get("/v1/conversations/{conversation_id}/items")
    async def list_items(conversation_id: str, limit: int = 20, order: Order = "desc", after: str | None = None) -> Any:
        page = await store.conversations.items.list(conversation_id, limit=limit, order=order, after=after)
        return page.to_api()

    @app.post("/v1/responses")
    async def create_response(body: dict[str, Any]) -> dict[str, Any]:
        return (await store.responses.create(**body)).to_api()

    @app.get("/v1/responses/{response_id}")
    async def retrieve(response_id: str) -> dict[str, Any]:
        return (await store.responses.get(response_id)).to_api()

    @app.post("/v1/responses/{response_id}/cancel")
    async def cancel(response_id: str) -> dict[str, Any]:
        return (await store.responses.cancel(response_id)).to_api()

    @app.get("/v1/responses/{response_id}/input_items")
    async def input_items(response_id: str, limit: int = 20, order: Order = "desc", after: str | None = None) -> Any:
        return (await store.responses.input_items.list(response_id, limit=limit, order=order, after=after)).to_api()

    return app


async def worker(store: AsyncStore) -> str | None:
    """Takes the oldest queued response, streams a reply into it and completes it."""
    claimed = await store.responses.claim_next()
    if claimed is None:
        return None
    reply = await store.responses.add_output_item(
        claimed.id, item={"type": "message", "role": "assistant", "content": []}
    )
    for piece in ("Hel", "lo", "!"):
        await store.responses.append_text(claimed.id, item_id=reply.id, text=piece)
    await store.responses.complete(claimed.id, usage={"input_tokens": 40, "output_tokens": 3})
    return claimed.id


def say(text: str) -> Any:
    return {"type": "message", "role": "user", "content": text}


def text_of(item: Any) -> str:
    """The text of a message item's first content part."""
    return str(item.content[0].text)


def test_the_openai_client_drives_conversations_and_background_responses(store_url: sa.URL, clock: FakeClock) -> None:
    async def scenario() -> None:
        async with AsyncStore(store_url, clock=clock) as store:
            transport = httpx2.ASGITransport(app=server(store))
            async with httpx2.AsyncClient(transport=transport, base_url="http://test") as http:
                client = openai.AsyncOpenAI(api_key="test", base_url="http://test/v1", http_client=http)
                conversation = await client.conversations.create(
                    items=[say(f"m{n}") for n in range(20)], metadata={"user": "42"}
                )
                assert conversation.metadata == {"user": "42"}
                await client.conversations.items.create(conversation.id, items=[say(f"m{n}") for n in range(20, 33)])
                walked = [item async for item in client.conversations.items.list(conversation.id, limit=7, order="asc")]
                assert [text_of(item) for item in walked] == [f"m{n}" for n in range(33)]

                queued = await client.responses.create(
                    model="gpt-4o", input=[say("q1"), say("q2")], conversation=conversation.id, background=True
                )
                assert (queued.status, queued.background) == ("queued", True)
                assert await worker(store) == queued.id
                done = await client.responses.retrieve(queued.id)
                assert (done.status, done.output_text) == ("completed", "Hello!")
                assert done.usage is not None and done.usage.total_tokens == 43

                doomed = await client.responses.create(model="gpt-4o", input="stop me", background=True)
                cancelled = await client.responses.cancel(doomed.id)
                assert cancelled.status == "cancelled"
                assert (await client.responses.retrieve(doomed.id)).status == "cancelled"
                direct = await client.responses.create(model="gpt-4o", input="now")
                with pytest.raises(openai.BadRequestError):  # only background responses can be cancelled
                    await client.responses.cancel(direct.id)

                inputs = [item async for item in client.responses.input_items.list(queued.id, limit=1)]
                assert [text_of(item) for item in inputs] == ["q2", "q1"]
                latest = [item async for item in client.conversations.items.list(conversation.id, limit=3)]
                assert latest[0].role == "assistant" and text_of(latest[0]) == "Hello!"  # type: ignore[union-attr]
                with pytest.raises(openai.NotFoundError):
                    await client.responses.retrieve("resp_missing")

    asyncio.run(scenario())
