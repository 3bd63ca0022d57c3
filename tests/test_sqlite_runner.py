"""AsyncStore's SQLite runner: calls go to its worker thread and their outcomes come back to the
event loop of each caller, through pipes; what it holds is let go of when the store closes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVarTuple

import pytest

from tests.conftest import FakeClock
from threadstore import AsyncStore, NotFoundError
from threadstore.runners import _Pipe

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike


Ts = TypeVarTuple("Ts")


class LoopThatCannotWatchPipes(asyncio.SelectorEventLoop):
    """An event loop without `add_reader`, as Windows' proactor loop is."""

    def add_reader(self, fd: FileDescriptorLike, callback: Callable[[*Ts], Any], *args: *Ts) -> None:
        raise NotImplementedError


def open_pipes() -> int:
    """The pipes this process holds open (not its files or sockets, which other code opens and closes too)."""
    pipes = 0
    for descriptor in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor, closed meanwhile
            pipes += os.readlink(f"/proc/self/fd/{descriptor}").startswith("pipe:")
    return pipes


def test_calls_on_a_loop_that_cannot_watch_a_pipe_return_their_results_and_their_errors(
    tmp_path: Path, clock: FakeClock
) -> None:
    async def body() -> tuple[str, str]:
        async with AsyncStore(f"sqlite:///{tmp_path / 'proactor.db'}", clock=clock) as store:
            created = await store.threads.create(metadata={"loop": "proactor"})
            found = await store.threads.get(created.id)
            with pytest.raises(NotFoundError):
                await store.threads.get("thread_missing")
            return created.id, found.id

    loop = LoopThatCannotWatchPipes()
    try:
        created, found = loop.run_until_complete(body())
    finally:
        loop.close()
    assert found == created


def test_calls_from_two_event_loops_at_once_each_return_to_their_own_loop(tmp_path: Path, clock: FakeClock) -> None:
    store = AsyncStore(f"sqlite:///{tmp_path / 'two.db'}", clock=clock)
    thread_id = asyncio.run(store.threads.create()).id
    found: dict[str, list[str]] = {}

    def caller(name: str) -> None:
        async def calls() -> list[str]:
            return [(await store.threads.get(thread_id)).id for _ in range(200)]

        found[name] = asyncio.run(calls())

    callers = [threading.Thread(target=caller, args=(name,)) for name in ("first", "second")]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(60)
    asyncio.run(store.close())
    assert found == {"first": [thread_id] * 200, "second": [thread_id] * 200}


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc/self/fd")
def test_a_closed_store_leaves_no_pipe_open_in_a_loop_that_goes_on(tmp_path: Path, clock: FakeClock) -> None:
    async def use_and_close(name: str) -> None:
        store = AsyncStore(f"sqlite:///{tmp_path / name}", clock=clock)
        thread = await store.threads.create()
        async with store.transaction() as tx:  # a worker of its own, kept for the next transaction
            await tx.messages.create(thread.id, role="user", content="hello")
        await store.close()

    async def pipes_before_and_after() -> tuple[int, int]:
        gc.collect()
        before = open_pipes()
        for index in range(3):
            await use_and_close(f"store{index}.db")
        gc.collect()
        return before, open_pipes()

    before, after = asyncio.run(pipes_before_and_after())
    assert after == before


def test_wake_ups_beyond_a_pipes_capacity_neither_block_nor_fail() -> None:
    pipe = _Pipe(blocking_read=False)
    for _ in range(100_000):  # a pipe holds 65,536 bytes on Linux
        pipe.wake()
    pipe.take()
    pipe.take()  # the rest, or nothing: neither blocks
    pipe.take()
    with pytest.raises(BlockingIOError):
        os.read(pipe.read, 1)  # every wake-up was taken
