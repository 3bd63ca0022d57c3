"""The run step names its details, last error and usage by foreign key, as the seed's run step
table does: `run_steps.step_details` (not null), `last_error` and `usage` (null until they apply)
hold the integer primary keys of rows in `run_step_details`, `run_step_last_errors` and
`run_step_usages`, which before pointed at their step by `step_id`. Each related row now belongs
to the step's run (`run_id`, deleted with it).

Every row is kept. A step's related rows take one number per step, in the order the steps were
created, so a step's details, error and usage share it. PostgreSQL's sequences then start after
the highest number.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STEP_TYPES = "type IN ('message_creation', 'tool_calls')"
PAYLOAD_MATCHES_TYPE = (
    "(type = 'message_creation' AND message_id IS NOT NULL AND tool_calls IS NULL)"
    " OR (type = 'tool_calls' AND tool_calls IS NOT NULL AND message_id IS NULL)"
)
ERROR_CODES = "code IN ('rate_limit_exceeded', 'server_error')"
# Each related table: its foreign key column in run_steps, and its payload columns.
RELATED = {
    "run_step_details": ("step_details", ["type", "message_id", "tool_calls"]),
    "run_step_last_errors": ("last_error", ["code", "message"]),
    "run_step_usages": ("usage", ["prompt_tokens", "completion_tokens", "total_tokens"]),
}
NUMBERS = "_ts_0004_numbers"


def _saved(table: str) -> str:
    return f"_ts_0004_{table}"


def _payload_columns(table: str) -> list[sa.Column[object]]:
    if table == "run_step_details":
        return [
            sa.Column("type", sa.String(), nullable=False),
            sa.Column("message_id", sa.String(), nullable=True),
            sa.Column("tool_calls", JSON, nullable=True),
        ]
    if table == "run_step_last_errors":
        return [sa.Column("code", sa.String(), nullable=False), sa.Column("message", sa.String(), nullable=False)]
    return [sa.Column(name, sa.Integer(), nullable=False) for name in RELATED[table][1]]


def _checks(table: str) -> list[sa.CheckConstraint]:
    if table == "run_step_details":
        return [
            sa.CheckConstraint(PAYLOAD_MATCHES_TYPE, name=op.f("ck_run_step_details_payload_matches_type")),
            sa.CheckConstraint(STEP_TYPES, name=op.f("ck_run_step_details_type")),
        ]
    if table == "run_step_last_errors":
        return [sa.CheckConstraint(ERROR_CODES, name=op.f("ck_run_step_last_errors_code"))]
    return []


def _create_new(table: str) -> None:
    op.create_table(
        table,
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        *_payload_columns(table),
        *_checks(table),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f(f"fk_{table}_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    )
    op.create_index(op.f(f"ix_{table}_run_id"), table, ["run_id"], unique=False)


def _create_old(table: str) -> None:
    op.create_table(
        table,
        sa.Column("step_id", sa.String(), nullable=False),
        *_payload_columns(table),
        *_checks(table),
        sa.ForeignKeyConstraint(
            ["step_id"], ["run_steps.id"], name=op.f(f"fk_{table}_step_id_run_steps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("step_id", name=op.f(f"pk_{table}")),
    )


def upgrade() -> None:
    execute = op.execute
    # One number per step, in creation order; kept, with each table's rows, in plain tables while
    # the related tables are made anew (PostgreSQL's index names are per schema, so the old and
    # new tables cannot stand side by side under their names).
    execute(
        f"CREATE TABLE {NUMBERS} AS SELECT id AS step_id, run_id,"
        " ROW_NUMBER() OVER (ORDER BY created_at, id) AS n FROM run_steps"
    )
    for table in RELATED:
        execute(f"CREATE TABLE {_saved(table)} AS SELECT * FROM {table}")
        op.drop_table(table)
    for table, (_, payload) in RELATED.items():
        _create_new(table)
        columns = ", ".join(payload)
        selected = ", ".join(f"saved.{column}" for column in payload)
        execute(
            f"INSERT INTO {table} (id, run_id, {columns}) SELECT numbers.n, numbers.run_id, {selected}"
            f" FROM {_saved(table)} saved JOIN {NUMBERS} numbers ON numbers.step_id = saved.step_id"
        )
    with op.batch_alter_table("run_steps") as batch:
        for column, _ in RELATED.values():
            batch.add_column(sa.Column(column, ROW_ID, nullable=True))
    execute(f"UPDATE run_steps SET step_details = (SELECT n FROM {NUMBERS} WHERE step_id = run_steps.id)")
    for table in ("run_step_last_errors", "run_step_usages"):
        column = RELATED[table][0]
        execute(f"UPDATE run_steps SET {column} = step_details WHERE id IN (SELECT step_id FROM {_saved(table)})")
    with op.batch_alter_table("run_steps") as batch:
        batch.alter_column("step_details", existing_type=ROW_ID, nullable=False)
        for table, (column, _) in RELATED.items():
            batch.create_unique_constraint(op.f(f"uq_run_steps_{column}"), [column])
            batch.create_foreign_key(op.f(f"fk_run_steps_{column}_{table}"), table, [column], ["id"])
        batch.create_check_constraint(
            op.f("ck_run_steps_last_error_by_status"), "last_error IS NULL OR status IN ('failed')"
        )
        batch.create_check_constraint(
            op.f("ck_run_steps_usage_by_status"),
            "usage IS NULL OR status IN ('cancelled', 'completed', 'expired', 'failed')",
        )
    for table in RELATED:
        op.drop_table(_saved(table))
    op.drop_table(NUMBERS)
    if op.get_bind().dialect.name == "postgresql":
        for table in RELATED:
            execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
            )


def downgrade() -> None:
    execute = op.execute
    for table, (column, payload) in RELATED.items():
        selected = ", ".join(f"related.{name}" for name in payload)
        execute(
            f"CREATE TABLE {_saved(table)} AS SELECT run_steps.id AS step_id, {selected}"
            f" FROM run_steps JOIN {table} related ON related.id = run_steps.{column}"
        )
    with op.batch_alter_table("run_steps") as batch:
        batch.drop_constraint(op.f("ck_run_steps_usage_by_status"), type_="check")
        batch.drop_constraint(op.f("ck_run_steps_last_error_by_status"), type_="check")
        for table, (column, _) in RELATED.items():
            batch.drop_constraint(op.f(f"fk_run_steps_{column}_{table}"), type_="foreignkey")
            batch.drop_constraint(op.f(f"uq_run_steps_{column}"), type_="unique")
            batch.drop_column(column)
    for table in RELATED:
        op.drop_index(op.f(f"ix_{table}_run_id"), table_name=table)
        op.drop_table(table)
    for table, (_, payload) in RELATED.items():
        _create_old(table)
        columns = ", ".join(payload)
        execute(f"INSERT INTO {table} (step_id, {columns}) SELECT step_id, {columns} FROM {_saved(table)}")
        op.drop_table(_saved(table))
