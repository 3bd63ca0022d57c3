"""The specification, pinned apart from the code it specifies.

The stateful tests read the machines in `states.py`, so a wrong edge there agrees with itself.
Here each lifecycle is spelled out literally, copied from README.md's Lifecycles section (the
spec), and compared with the machines: transitions, stamps, kept first stamps, field rules,
active and terminal statuses, and the tables of what a run's end does to its steps, messages and
thread. Then every CHECK constraint of the models is compared with the schema the migrations
build, on every backend, over every table, so that neither can drift from the other.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import threadstore.langgraph.models
import threadstore.openai.models
import threadstore.responses.models
from tests.conftest import BACKENDS, new_postgres_schema, postgres_url_in_schema
from threadstore import migrate
from threadstore.db import create_engine
from threadstore.langgraph import states as langgraph_states
from threadstore.lifecycle import FieldRule, Machine
from threadstore.openai import states as openai_states
from threadstore.responses import states as responses_states
from threadstore.schema import TABLE_PREFIX, metadata, status_checks
from threadstore.versions import VERSION_TABLE

README = (Path(__file__).parents[1] / "README.md").read_text()
LIFECYCLES = README.split("\n## Lifecycles\n", 1)[1].split("\n## ", 1)[0]
LANGGRAPH = README.split("\n## LangGraph servers\n", 1)[1].split("\n## ", 1)[0]
RESPONSES = README.split("\n## Responses and Conversations\n", 1)[1].split("\n## ", 1)[0]


def rule(*statuses: str, required: bool = False) -> FieldRule:
    return FieldRule(frozenset(statuses), required=required)


@dataclass(frozen=True)
class Spec:
    """One lifecycle as the README states it."""

    machine: Machine
    initial: str
    transitions: dict[str, set[str]]
    active: set[str]
    terminal: set[str]
    stamps: dict[str, str]
    keep_first: set[str]
    fields: dict[str, FieldRule]


# --- the README's lifecycles, spelled out -------------------------------------------------------

OPENAI_RUN = Spec(
    machine=openai_states.RUN,
    initial="queued",
    transitions={
        "queued": {"in_progress", "cancelled", "failed", "expired"},
        "in_progress": {"queued", "requires_action", "cancelling", "completed", "failed", "incomplete", "expired"},
        "requires_action": {"queued", "cancelled", "failed", "expired"},
        "cancelling": {"cancelled", "completed", "failed", "incomplete", "expired"},
    },
    active={"queued", "in_progress", "requires_action", "cancelling"},
    terminal={"cancelled", "failed", "completed", "incomplete", "expired"},
    # "`started_at` on the first `in_progress`; `cancelled_at`, `failed_at`, `completed_at` on entry"
    stamps={
        "in_progress": "started_at",
        "cancelled": "cancelled_at",
        "failed": "failed_at",
        "completed": "completed_at",
    },
    keep_first={"started_at"},
    fields={
        # `required_action` only in `requires_action`, where it holds the calls asked for.
        "required_action": rule("requires_action", required=True),
        # `last_error` only in `failed`; `fail(id, code=..., message=...)` always gives one.
        "last_error_code": rule("failed", required=True),
        # `incomplete_details` only in `incomplete`; `mark_incomplete` may give no reason.
        "incomplete_reason": rule("incomplete"),
        # `usage` only in a terminal status; `complete` may give none.
        "usage_total_tokens": rule("cancelled", "failed", "completed", "incomplete", "expired"),
        # `expires_at` is set on create and cleared by every terminal status but `expired`.
        "expires_at": rule("queued", "in_progress", "requires_action", "cancelling", "expired"),
        # A leased claim's `lease_expires_at` is held only while a worker holds the run.
        "lease_expires_at": rule("in_progress", "cancelling"),
    },
)

RUN_STEP = Spec(
    machine=openai_states.RUN_STEP,
    initial="in_progress",
    transitions={"in_progress": {"completed", "failed", "cancelled", "expired"}},
    active={"in_progress"},
    terminal={"completed", "failed", "cancelled", "expired"},
    stamps={
        "completed": "completed_at",
        "failed": "failed_at",
        "cancelled": "cancelled_at",
        "expired": "expired_at",
    },
    keep_first=set(),
    # "`last_error` ... only when failed; `usage` ... only in a terminal status"
    fields={
        "last_error": rule("failed"),
        "usage": rule("completed", "failed", "cancelled", "expired"),
    },
)

MESSAGE = Spec(
    machine=openai_states.MESSAGE,
    initial="in_progress",
    transitions={"in_progress": {"completed", "incomplete"}},
    active={"in_progress"},
    terminal={"completed", "incomplete"},
    stamps={"completed": "completed_at", "incomplete": "incomplete_at"},
    keep_first=set(),
    fields={
        # "`incomplete_at` (with `incomplete_details.reason`)": an incomplete message has a reason.
        "incomplete_reason": rule("incomplete", required=True),
        "completed_at": rule("completed"),
        "incomplete_at": rule("incomplete"),
    },
)

LANGGRAPH_RUN = Spec(
    machine=langgraph_states.RUN,
    initial="pending",
    transitions={
        "pending": {"running", "interrupted"},
        "running": {"success", "error", "timeout", "interrupted", "pending"},
    },
    active={"pending", "running"},
    terminal={"success", "error", "timeout", "interrupted"},
    stamps={},
    keep_first=set(),
    # A claim leases the run; the lease is held while it runs and only then.
    fields={"lease_expires_at": rule("running", required=True)},
)

RESPONSE = Spec(
    machine=responses_states.RESPONSE,
    initial="queued",
    transitions={
        "queued": {"in_progress", "cancelled", "failed"},
        "in_progress": {"completed", "failed", "incomplete", "cancelled"},
    },
    active={"queued", "in_progress"},
    terminal={"completed", "failed", "incomplete", "cancelled"},
    # "`completed_at` on completion"
    stamps={"completed": "completed_at"},
    keep_first=set(),
    fields={
        # "`error` only when failed": `fail(id, code=..., message=...)` always gives one.
        "error_code": rule("failed", required=True),
        # "`incomplete_details` only when incomplete": `mark_incomplete(id, reason=...)` gives its reason.
        "incomplete_reason": rule("incomplete", required=True),
        # "`usage` only in a terminal status"
        "usage": rule("completed", "failed", "incomplete", "cancelled"),
        "completed_at": rule("completed"),
    },
)

SPECS = {
    "openai run": OPENAI_RUN,
    "run step": RUN_STEP,
    "message": MESSAGE,
    "langgraph run": LANGGRAPH_RUN,
    "response": RESPONSE,
}
each_machine = pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))


def transitions_of(machine: Machine) -> dict[str, set[str]]:
    """The machine's moves; a status listed with no targets is terminal, as one not listed is."""
    return {source: set(targets) for source, targets in machine.transitions.items() if targets}


# --- the literal tables are the README's --------------------------------------------------------


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in `text`, each a list of its cells."""
    lines = text.splitlines()
    start = next(number for number, line in enumerate(lines) if line.startswith("|"))
    table = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]


def listed(text: str) -> list[str]:
    """`a, b (why), c` as [a, b, c], backticks and explanations dropped."""
    return [item.strip().strip("`") for item in re.sub(r"\([^)]*\)", "", text).split(",")]


def readme_table(heading: str) -> tuple[dict[str, set[str]], dict[str, str]]:
    """The README table after `heading`: its moves, and the stamps of its third column if any."""
    moves: dict[str, set[str]] = {}
    stamps: dict[str, str] = {}
    for row in table_rows(LIFECYCLES.split(heading, 1)[1]):
        targets = listed(row[1])
        moves[row[0]] = set(targets)
        if len(row) > 2:
            stamps.update(zip(targets, listed(row[2]), strict=True))
    return moves, stamps


def test_the_openai_run_table_here_is_the_readmes() -> None:
    assert readme_table("**Run** —") == (OPENAI_RUN.transitions, {})
    active = re.search(r"\*\*Run\*\* — active: (.*)\.\n", LIFECYCLES)
    assert active is not None and set(listed(active[1])) == OPENAI_RUN.active


def test_the_run_step_table_here_is_the_readmes() -> None:
    assert readme_table("**Run step**:") == (RUN_STEP.transitions, RUN_STEP.stamps)


def test_the_message_table_here_is_the_readmes() -> None:
    assert readme_table("**Message**:") == (MESSAGE.transitions, MESSAGE.stamps)


def test_the_response_table_here_is_the_readmes() -> None:
    moves: dict[str, set[str]] = {}
    for row in table_rows(RESPONSES.split("**Response**:", 1)[1]):
        moves[row[0]] = set(listed(row[1]))
    assert moves == RESPONSE.transitions


def test_a_response_is_created_queued_in_the_background_or_else_in_progress() -> None:
    assert responses_states.RESPONSE.creatable == {"queued", "in_progress"}


def test_the_langgraph_run_lifecycle_here_is_the_readmes() -> None:
    sentence = re.search(r"\*\*Run lifecycle\*\*: (.*?)\. ", LANGGRAPH, flags=re.DOTALL)
    assert sentence is not None
    moves = {}
    for clause in sentence[1].split(";"):
        source, targets = re.sub(r"\([^)]*\)", "", clause).split("→")
        moves[source.strip().strip("`")] = {target.strip().strip("`") for target in targets.split("|")}
    assert moves == LANGGRAPH_RUN.transitions


# --- the machines follow the spec ---------------------------------------------------------------


@each_machine
def test_objects_are_created_in_the_specified_status(spec: Spec) -> None:
    assert spec.machine.initial == spec.initial


@each_machine
def test_each_status_moves_exactly_where_the_table_says(spec: Spec) -> None:
    assert transitions_of(spec.machine) == spec.transitions


def test_a_planted_wrong_edge_differs_from_the_spec() -> None:
    wrong = {**OPENAI_RUN.machine.transitions, "cancelled": frozenset({"in_progress"})}
    assert transitions_of(replace(OPENAI_RUN.machine, transitions=wrong)) != OPENAI_RUN.transitions


@each_machine
def test_the_active_statuses_are_the_specified_ones(spec: Spec) -> None:
    assert spec.machine.active == spec.active


@each_machine
def test_the_terminal_statuses_are_the_specified_ones_and_absorbing(spec: Spec) -> None:
    assert spec.machine.terminal == spec.terminal
    assert not any(spec.machine.allows(end, status) for end in spec.terminal for status in spec.machine.statuses)


@each_machine
def test_entering_a_status_stamps_the_specified_column(spec: Spec) -> None:
    assert dict(spec.machine.stamps) == spec.stamps


@each_machine
def test_only_the_specified_stamps_keep_their_first_time(spec: Spec) -> None:
    assert spec.machine.keep_first == spec.keep_first


@each_machine
def test_each_column_is_held_only_in_the_specified_statuses(spec: Spec) -> None:
    assert dict(spec.machine.fields) == spec.fields


# --- what a run's end does to its steps, its messages and its thread ---------------------------


def test_a_run_ending_ends_its_in_progress_steps_as_specified() -> None:
    # "completed (run completed or incomplete), cancelled, failed (with the run's error) or expired"
    assert openai_states.STEP_STATUS_WHEN_RUN_ENDS == {
        "completed": "completed",
        "incomplete": "completed",
        "cancelled": "cancelled",
        "failed": "failed",
        "expired": "expired",
    }


def test_a_run_ending_ends_its_in_progress_messages_as_specified() -> None:
    # "completed (run completed) or incomplete with reason max_tokens, run_cancelled, run_failed or
    # run_expired"
    assert openai_states.MESSAGE_END_WHEN_RUN_ENDS == {
        "completed": ("completed", None),
        "incomplete": ("incomplete", "max_tokens"),
        "cancelled": ("incomplete", "run_cancelled"),
        "failed": ("incomplete", "run_failed"),
        "expired": ("incomplete", "run_expired"),
    }


def test_a_langgraph_thread_is_busy_while_a_run_is_pending_or_running() -> None:
    busy = langgraph_states.BUSY_RUN_STATUSES
    assert busy == {"pending", "running"}


def test_a_langgraph_thread_takes_its_status_from_the_run_that_ended_last() -> None:
    # "`error` after error or timeout, `interrupted` after an interrupt, `idle` after success"
    assert langgraph_states.THREAD_STATUS_AFTER_RUN == {
        "success": "idle",
        "error": "error",
        "timeout": "error",
        "interrupted": "interrupted",
    }


# --- the CHECK constraints of the models are those the migrations build -------------------------

Checks = dict[tuple[str, str], str]  # (table, constraint name) → its SQL, normalised

SPEC_TABLES = {
    threadstore.openai.models.runs.name: OPENAI_RUN,
    threadstore.openai.models.run_steps.name: RUN_STEP,
    threadstore.openai.models.messages.name: MESSAGE,
    threadstore.langgraph.models.runs.name: LANGGRAPH_RUN,
    threadstore.responses.models.responses.name: RESPONSE,
}


def normalised(sql: str) -> str:
    """`sql` with whitespace collapsed, no space inside parentheses, identifiers unquoted and any
    parentheses around the whole of it dropped."""
    text = re.sub(r"\s+", " ", sql).strip()
    text = re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", text))
    text = re.sub(r'"(\w+)"', r"\1", text)
    while text.startswith("(") and text.endswith(")") and encloses(text):
        text = text[1:-1].strip()
    return text


def encloses(text: str) -> bool:
    """Whether the parenthesis opening `text` is the one closing it."""
    depth = 0
    for position, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return position == len(text) - 1
    return False


def reflected_checks(engine: Engine) -> Checks:
    """Every CHECK constraint of every table in the database, as the database reports it."""
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        return {
            (table, str(check["name"])): normalised(check["sqltext"])
            for table in inspector.get_table_names()
            if table != VERSION_TABLE
            for check in inspector.get_check_constraints(table)
        }


def compiled_sql(check: sa.CheckConstraint, engine: Engine) -> str:
    """A CHECK constraint's condition compiled for `engine`'s dialect, normalised."""
    return normalised(str(check.sqltext.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})))


def compiled_checks(engine: Engine) -> Checks:
    """Every CHECK constraint of the models, compiled for `engine`'s dialect."""
    return {
        (table.name, str(check.name)): compiled_sql(check, engine)
        for table in metadata.sorted_tables
        for check in table.constraints
        if isinstance(check, sa.CheckConstraint)
    }


@contextmanager
def engine_on_new_schema() -> Iterator[Engine]:
    """An engine on a new, empty PostgreSQL schema, which is dropped afterwards."""
    with new_postgres_schema() as name:
        engine = create_engine(postgres_url_in_schema(name))
        try:
            yield engine
        finally:
            engine.dispose()


@dataclass(frozen=True)
class Schemas:
    """The CHECK constraints of the migrated schema and of the models, on one backend."""

    migrated: Checks
    modelled: Checks


@pytest.fixture(scope="module", params=BACKENDS)
def schemas(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Schemas]:
    """On SQLite, the migrated file's constraints and the models' compiled SQL. On PostgreSQL,
    which rewrites a CHECK's text, both as the server prints them: the migrations in one new
    schema, the models (`metadata.create_all`) in another."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('specs') / 'migrated.db'}")
        migrate.upgrade(engine)
        yield Schemas(migrated=reflected_checks(engine), modelled=compiled_checks(engine))
        engine.dispose()
        return
    with engine_on_new_schema() as migrated, engine_on_new_schema() as modelled:
        migrate.upgrade(migrated)
        metadata.create_all(modelled)
        yield Schemas(migrated=reflected_checks(migrated), modelled=reflected_checks(modelled))


def test_the_models_and_the_migrations_have_the_same_check_constraints(schemas: Schemas) -> None:
    assert {("threadstore_runs", "ck_runs_status"), ("threadstore_langgraph_runs", "ck_langgraph_runs_status")} <= set(
        schemas.modelled
    )
    only_in_models = sorted(set(schemas.modelled) - set(schemas.migrated))
    only_in_migrations = sorted(set(schemas.migrated) - set(schemas.modelled))
    assert (only_in_models, only_in_migrations) == ([], [])


def differing(modelled: Checks, migrated: Checks) -> dict[tuple[str, str], tuple[str, str]]:
    """The constraints both have whose SQL differs: (models', migrations')."""
    both = set(modelled) & set(migrated)
    return {key: (modelled[key], migrated[key]) for key in sorted(both) if modelled[key] != migrated[key]}


def test_each_check_constraint_says_the_same_in_the_models_and_the_migrations(schemas: Schemas) -> None:
    assert set(schemas.modelled) & set(schemas.migrated)
    assert differing(schemas.modelled, schemas.migrated) == {}


def test_a_drifted_field_rule_is_caught_against_the_migrated_schema(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    migrate.upgrade(engine)
    drifted = {**dict(openai_states.RUN.fields), "incomplete_reason": rule("incomplete", "failed")}
    check = status_checks(replace(openai_states.RUN, fields=drifted))[list(drifted).index("incomplete_reason")]
    compiled = {("threadstore_runs", "ck_runs_incomplete_reason_by_status"): compiled_sql(check, engine)}
    migrated = reflected_checks(engine)
    engine.dispose()
    assert list(differing(compiled, migrated)) == [("threadstore_runs", "ck_runs_incomplete_reason_by_status")]


def test_every_specified_field_rule_is_a_check_constraint_of_the_migrated_schema(schemas: Schemas) -> None:
    expected = {
        (table, f"ck_{table.removeprefix(TABLE_PREFIX)}_{column}_by_status")
        for table, spec in SPEC_TABLES.items()
        for column in spec.fields
    }
    assert expected
    assert sorted(expected - set(schemas.migrated)) == []
