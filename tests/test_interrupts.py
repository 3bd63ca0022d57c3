"""A call cut short by a signal leaves the store usable.

A signal handler that raises (KeyboardInterrupt, a request timeout) can interrupt a call between
any two bytecodes: after a lock is taken, after BEGIN, during COMMIT. Thousands of hot calls are
each cut short at a random microsecond offset by a timer signal; afterwards the store still works,
`close()` returns at once, no lock or transaction is left held (SQLite: another connection can
BEGIN IMMEDIATE at once) and, on PostgreSQL, no connection is checked out of the pool or left idle
in a transaction. Signals reach only the main thread, so these tests drive the sync `Store`
(AsyncStore's cut-short calls are cancellations: see test_async_store.py).
"""

from __future__ import annotations

import gc
import logging
import os
import random
import signal
import sqlite3
import statistics
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import TracebackType
from typing import Any

import pytest
import sqlalchemy as sa

import threadstore
from tests.conftest import count_as_admin
from threadstore import Store, ThreadStoreError, Transaction, UsageError
from threadstore import db as threadstore_db
from threadstore.store import TransactionBlock

CALLS = 3000


class Interrupted(BaseException):
    """What the signal handler raises, as KeyboardInterrupt would."""


class Timer:
    """A timer signal that raises Interrupted once while armed, or twice: the second shot lands
    `again` seconds after the first, while the first one's cleanup may still be running."""

    def __init__(self) -> None:
        self.shots = 0  # how many more times the signal raises
        self.again = 0.0
        self.keep = False  # keep each interrupt caught, and with it its frames (as an error reporter does)
        self.caught: list[BaseException] = []
        self.unraisable: list[object] = []  # what the store's finalizers raised, not the shots (the fixture's)

    def _fire(self, *_: object) -> None:
        if self.shots > 0:  # a signal that lands after the call is over interrupts nothing
            self.shots -= 1
            if self.shots > 0:
                signal.setitimer(signal.ITIMER_REAL, self.again)
            raise Interrupted

    def disarm(self) -> None:
        self.shots = 0
        signal.setitimer(signal.ITIMER_REAL, 0)

    def call(self, function: Callable[[], object], after_seconds: float, again_seconds: float | None = None) -> bool:
        """Call `function` with the signal set to fire `after_seconds` in (and, given
        `again_seconds`, once more that long after); whether it was cut short."""
        self.shots, self.again = (1, 0.0) if again_seconds is None else (2, again_seconds)
        try:
            try:
                signal.setitimer(signal.ITIMER_REAL, after_seconds)
                function()
                self.disarm()
            except Interrupted as error:
                self.disarm()
                self._caught(error)
                return True
            except ThreadStoreError as error:
                # psycopg interrupted inside a pipeline (executemany) reports its own failure to
                # leave the pipeline, with the interrupt as its context: still this call's interrupt
                self.disarm()
                if not caused_by_interrupt(error):
                    raise
                self._caught(error)
                return True
        except Interrupted as error:  # the second shot, landing in the handler of the first
            self.disarm()
            self._caught(error)
            return True
        return False

    def _caught(self, error: BaseException) -> None:
        if self.keep:
            self.caught.append(error)


def caused_by_interrupt(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, Interrupted):
            return True
        error = error.__cause__ or error.__context__
    return False


@pytest.fixture
def timer() -> Iterator[Timer]:
    installed = Timer()
    with only_the_store_interrupted() as unraisable:
        installed.unraisable = unraisable
        previous = signal.signal(signal.SIGALRM, installed._fire)
        try:
            yield installed
        finally:
            installed.disarm()
            signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def interrupted_store(backend: str, store_url: sa.URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A sync store whose SQLite lock waits are short (a lock left held shows in seconds, not 30 s)
    and whose PostgreSQL connections carry a name of their own (to find them in pg_stat_activity)."""
    monkeypatch.setattr(threadstore_db, "BUSY_TIMEOUT_MS", 2000)
    url = store_url
    if backend == "postgres":
        url = url.update_query_dict({"application_name": f"ts_{uuid.uuid4().hex[:10]}"})
    store = Store(url, engine_options={"pool_timeout": 2} if backend == "postgres" else None)
    try:
        yield store
    finally:
        store.engine.dispose()


def hot_calls(store: Store) -> list[Callable[[], object]]:
    """The calls to cut short: a read, a write, a claim, a transaction, LangGraph's create and claim."""
    assistant = store.assistants.create(model="gpt-4o").id
    thread = store.threads.create().id

    def transaction() -> None:
        with store.transaction() as tx:
            new = tx.threads.create().id
            tx.messages.create(new, role="user", content="hi")
            tx.runs.create(new, assistant_id=assistant)

    def langgraph_run() -> None:
        lg_thread = store.langgraph.threads.create().thread_id
        store.langgraph.runs.create(lg_thread, assistant_id="agent")

    return [
        lambda: store.threads.get(thread),
        lambda: store.messages.create(thread, role="user", content="hello"),
        store.runs.claim_next,
        transaction,
        langgraph_run,
        lambda: store.langgraph.runs.claim_next(lease_seconds=60),
    ]


def median_seconds(call: Callable[[], object]) -> float:
    times = []
    for _ in range(20):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interrupt_at_random(store: Store, timer: Timer, seed: int, calls_made: int = CALLS, *, twice: bool = False) -> int:
    """Make CALLS calls, each with a signal at a random offset within three times its usual duration
    (`twice`: and another within its usual duration after that, as the first one's cleanup runs);
    return how many were cut short. Any error but the interrupt fails the test at once."""
    rng = random.Random(seed)
    calls = [(call, median_seconds(call)) for call in hot_calls(store)]
    cut = 0
    for _ in range(calls_made):
        call, usual = rng.choice(calls)
        again = max(1e-6, rng.uniform(0, usual)) if twice else None
        cut += timer.call(call, max(1e-6, rng.uniform(0, 3 * usual)), again)
    return cut


def close_promptly(store: Store) -> None:
    closer = threading.Thread(target=store.close, daemon=True)
    closer.start()
    closer.join(timeout=10)
    assert not closer.is_alive(), "Store.close() is stuck: a lock of the store is still held"


def still_works(store: Store) -> None:
    thread = store.threads.create().id
    store.messages.create(thread, role="user", content="after")
    assert [m.id for m in store.messages.list(thread)]
    with store.transaction() as tx:
        tx.threads.update(thread, metadata={"still": "works"})
    assert store.threads.get(thread).metadata == {"still": "works"}


def no_write_lock_held(url: sa.URL) -> None:
    assert url.database
    other = sqlite3.connect(url.database, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # fails at once with "database is locked" if a BEGIN was left open
        other.execute("COMMIT")
    finally:
        other.close()


def no_connection_left_in_a_transaction(store: Store) -> None:
    name = store.url.query["application_name"]
    left_in_transaction = count_as_admin(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name AND state LIKE 'idle in transaction%'",
        name=name,
    )
    assert left_in_transaction == 0


def check_after(store: Store, backend: str) -> None:
    if backend == "sqlite":
        no_write_lock_held(store.url)
    else:
        no_connection_left_in_a_transaction(store)
    still_works(store)
    if backend == "sqlite":
        close_promptly(store)
    else:
        no_connection_left_in_a_transaction(store)


@pytest.mark.parametrize("seed", [1])
def test_calls_cut_short_by_a_signal_at_random_points_leave_the_store_usable(
    interrupted_store: Store, backend: str, timer: Timer, seed: int
) -> None:
    try:
        cut = interrupt_at_random(interrupted_store, timer, seed)
    except ThreadStoreError as error:
        pytest.fail(f"a call after an interrupted one failed: {error!r}")
    assert cut > CALLS // 10  # the signals did land inside calls
    assert timer.unraisable == []
    check_after(interrupted_store, backend)


@contextmanager
def only_the_store_interrupted() -> Iterator[list[object]]:
    """Keep the shots out of code that is not the store's, which they would otherwise reach through
    the store's cleanup: Python hands an exception raised in a finalizer (a weak reference's
    callback, a garbage collection's callback) to sys.unraisablehook, pytest's, which formats it for
    long enough that the next call's shot lands inside it and fails the test from pytest's own code;
    and SQLAlchemy's pool logs a close cut short, under the logging module's lock, which a shot would
    leave held (a disabled logger takes no lock). Yields the unraisable exceptions raised in
    threadstore's code that are not the test's shots."""
    unraisable: list[object] = []
    previous = sys.unraisablehook

    def hook(report: Any) -> None:
        # psycopg's own finalizers may fail on a connection a shot cut short: theirs, not ours
        if report.exc_type is not Interrupted and _in_threadstore(report.exc_traceback):
            unraisable.append(report.exc_value)

    sys.unraisablehook = hook
    names = [name for name in list(logging.root.manager.loggerDict) if name.startswith("sqlalchemy")]
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.disabled = True
    try:
        yield unraisable
    finally:
        for logger in loggers:
            logger.disabled = False
        sys.unraisablehook = previous


def _in_threadstore(trace: TracebackType | None) -> bool:
    package = os.path.dirname(threadstore.__file__)
    return any(frame.f_code.co_filename.startswith(package) for frame, _ in traceback.walk_tb(trace))


def test_an_interrupt_landing_while_another_ones_cleanup_runs_leaves_the_store_usable(
    interrupted_store: Store, backend: str, timer: Timer
) -> None:
    # The units the interrupts cut short stay alive with their frames, as an error reporter that
    # keeps tracebacks keeps them. Not on PostgreSQL: a connection that an interrupt caught while
    # it was opened is reachable only from those frames, closed once they are collected; kept,
    # each one would hold a server connection open until the server refused more.
    timer.keep = backend == "sqlite"
    try:
        cut = interrupt_at_random(interrupted_store, timer, 2, twice=True)
    except ThreadStoreError as error:
        pytest.fail(f"a call after an interrupted one failed: {error!r}")
    assert cut > CALLS // 10
    assert timer.unraisable == []
    check_after(interrupted_store, backend)


def test_a_call_interrupted_on_postgresql_returns_no_broken_connection(
    interrupted_store: Store, backend: str, timer: Timer
) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL's pool")
    thread = interrupted_store.threads.create().id
    interrupted_store.engine.dispose()
    outcomes: list[Any] = []
    for offset in range(1, 400, 3):  # microseconds: through connect, BEGIN, the statement, COMMIT
        outcomes.append(timer.call(lambda: interrupted_store.threads.get(thread), offset * 1e-6))
        assert interrupted_store.threads.get(thread).id == thread
    assert any(outcomes)
    assert timer.unraisable == []
    no_connection_left_in_a_transaction(interrupted_store)


def test_no_pooled_connection_stays_checked_out_and_close_is_prompt_after_calls_cut_short(
    interrupted_store: Store, backend: str, timer: Timer
) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL's pool (SQLite's hot paths keep one connection out of the pool)")
    interrupt_at_random(interrupted_store, timer, 3, CALLS // 3)
    gc.collect()  # units an interrupt dropped inside a reference cycle give their connections back when collected
    assert timer.unraisable == []
    assert interrupted_store._engine_scope.lent() == 0  # the store's pool (kept.py)
    close_promptly(interrupted_store)


def test_a_unit_dropped_unfinished_in_a_reference_cycle_does_not_hold_up_the_next_call(
    interrupted_store: Store, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's kept connection")
    store = interrupted_store
    thread = store.threads.create().id
    gc.disable()  # as between two automatic collections
    try:
        unit = store._engine_scope.write()
        unit.__enter__()  # BEGIN IMMEDIATE on the kept connection; its __exit__ never runs
        cycle: list[object] = [unit]
        cycle.append(cycle)
        del unit, cycle
        store.messages.create(thread, role="user", content="not held up")  # else: locked, after 2 s
    finally:
        gc.enable()
    assert [m.content[0]["text"]["value"] for m in store.messages.list(thread)] == ["not held up"]


def test_a_unit_kept_alive_after_its_end_was_skipped_does_not_hold_up_the_next_call(
    interrupted_store: Store, backend: str
) -> None:
    store = interrupted_store
    thread = store.threads.create().id
    unit = store._engine_scope.write()
    unit.__enter__()  # its __exit__ never runs (an interrupt as it was called)
    saved = [unit]  # as the frames of a traceback an exception hook saved keep their locals alive
    store.messages.create(thread, role="user", content="not held up")  # else, SQLite: locked, after 2 s
    assert [m.content[0]["text"]["value"] for m in store.messages.list(thread)] == ["not held up"]
    assert saved and interrupted_store._engine_scope.lent() == 0


def test_a_connection_let_go_as_broken_while_its_unit_lives_on_leaves_no_lock_held(
    interrupted_store: Store, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's locks")
    store = interrupted_store
    thread = store.threads.create().id
    store.threads.create()
    unit = store._engine_scope.write()
    raw = unit.__enter__()  # BEGIN IMMEDIATE
    raw.cursor().execute("SELECT id FROM threadstore_threads").fetchone()  # a statement under way: one row of two read
    unit._discard()  # as when its ROLLBACK is cut short: the connection is let go, its state unknown
    saved = [unit]  # kept alive, as by a saved traceback: its cursor with it
    no_write_lock_held(store.url)
    store.messages.create(thread, role="user", content="not held up")
    assert saved and len(store.messages.list(thread)) == 1


def test_close_is_prompt_when_its_thread_kept_alive_a_unit_whose_end_was_skipped(interrupted_store: Store) -> None:
    saved: list[object] = []

    def abandon_a_unit_then_close() -> None:
        unit = interrupted_store._engine_scope.write()
        unit.__enter__()  # its __exit__ never runs (an interrupt as it was called)
        saved.append(unit)  # kept alive, as by a saved traceback
        interrupted_store.close()  # by the same thread, whose unit of one call is over

    closer = threading.Thread(target=abandon_a_unit_then_close, daemon=True)
    closer.start()
    closer.join(timeout=10)
    assert not closer.is_alive(), "Store.close() waits for a unit that will never end"
    assert saved and interrupted_store._engine_scope.lent() == 0


def test_a_transaction_block_whose_end_an_interrupt_kept_from_running_is_over_for_its_thread(
    interrupted_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = interrupted_store
    thread = store.threads.create().id
    end = TransactionBlock.__exit__

    def cut_short(self: TransactionBlock, *args: object) -> None:
        # an interrupt handled as __exit__ is called (where Python handles a signal that arrived
        # while the block unwound), before any of it runs
        monkeypatch.setattr(TransactionBlock, "__exit__", end)
        raise Interrupted

    def write_inside() -> None:
        with store.transaction() as tx:
            tx.messages.create(thread, role="user", content="never committed")

    monkeypatch.setattr(TransactionBlock, "__exit__", cut_short)
    saved: list[BaseException] = []
    try:
        write_inside()
    except Interrupted as interrupt:
        saved.append(interrupt)  # kept, with its frames and so the block, as an error reporter keeps them
    store.messages.create(thread, role="user", content="after")  # not refused, not held up
    assert [m.content[0]["text"]["value"] for m in store.messages.list(thread)] == ["after"]
    assert saved


def test_a_generator_suspended_inside_its_transaction_block_still_holds_it_open(interrupted_store: Store) -> None:
    store = interrupted_store
    thread = store.threads.create().id

    def inside() -> Iterator[None]:
        with store.transaction() as tx:
            tx.messages.create(thread, role="user", content="inside")
            yield

    suspended = inside()
    next(suspended)
    with pytest.raises(UsageError):
        store.messages.list(thread)
    with pytest.raises(StopIteration):
        next(suspended)
    assert [m.content[0]["text"]["value"] for m in store.messages.list(thread)] == ["inside"]


def test_a_transaction_entered_through_an_exit_stack_still_holds_it_open_after_its_entering_frame_returned(
    interrupted_store: Store,
) -> None:
    store = interrupted_store
    thread = store.threads.create().id
    with ExitStack() as stack:

        def enter() -> Transaction:
            return stack.enter_context(store.transaction())

        tx = enter()
        tx.messages.create(thread, role="user", content="inside")
        with pytest.raises(UsageError):
            store.messages.list(thread)
    assert [m.content[0]["text"]["value"] for m in store.messages.list(thread)] == ["inside"]
