"""Minute rollups and failure rollups: statistics of a burst read no raw rows.

A tenant whose rows all arrived in the last hour made the minute series, and every range that
starts or ends inside an hour, read those rows one by one; failure patterns always grouped
every failed row of the range. Now:

- `action_rollups` also keeps minutes (period 60); its histogram counts may be NULL (= 0), so
  that a minute's row, which rarely fills more than a few of the 71 buckets, does not carry
  71 stored zeros on PostgreSQL;
- `action_failure_rollups` keeps the failure groups per minute, hour and day.

Existing rows are counted in by the upgrade, one tenant at a time (under row-level security
the tenant must be set for its rows to be seen and written), with the statements of
`actionlog rollups rebuild`, so that both give the same rollups.

Revision ID: 0011_minute_and_failure_rollups
Revises: 0010_row_level_security
Create Date: 2026-12-02
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa

from alembic import op
from app.actions import rollup_rebuild, rollups
from app.actions.models import HISTOGRAM_BUCKETS, action_failure_rollups

revision: str = "0011_minute_and_failure_rollups"
down_revision: str | None = "0010_row_level_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HISTOGRAM = [f"h{i:02d}" for i in range(HISTOGRAM_BUCKETS)]
TABLE = "action_failure_rollups"


def _row_level_security() -> ModuleType:
    path = Path(__file__).with_name("0010_row_level_security.py")
    spec = importlib.util.spec_from_file_location("row_level_security", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _set_histogram_nullable(nullable: bool) -> None:
    with op.batch_alter_table("action_rollups") as batch:
        for name in HISTOGRAM:
            batch.alter_column(name, existing_type=sa.BigInteger(), nullable=nullable)


def _backfill() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    tenants = bind.execute(sa.select(sa.table("tenants", sa.column("id", sa.Uuid())).c.id))
    for (tenant_id,) in tenants.all():
        if dialect == "postgresql":
            bind.execute(
                sa.text("SELECT set_config('app.tenant_id', :tenant, true)"),
                {"tenant": str(tenant_id)},
            )
        bind.execute(rollup_rebuild.rebuild_statement(dialect, rollups.MINUTE, tenant_id))
        for period in rollups.PERIODS:
            groups = bind.execute(rollup_rebuild.failure_groups_query(dialect, period, tenant_id))
            rows = rollup_rebuild.failure_rollup_rows(period, groups)
            for chunk in range(0, len(rows), 1000):
                bind.execute(sa.insert(action_failure_rollups), rows[chunk : chunk + 1000])
    if dialect == "postgresql":
        bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def upgrade() -> None:
    _set_histogram_nullable(True)
    op.create_table(
        TABLE,
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action_type", sa.String(100), nullable=False),
        sa.Column("provider_name", sa.String(100), nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error_type", sa.String(255), nullable=False),
        sa.Column("pattern_key", sa.String(32), nullable=False),
        sa.Column("pattern", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("example_id", sa.Uuid(), nullable=True),
        sa.Column("sample", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=f"fk_{TABLE}_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "period", "start", "action_type", "provider_name", "service", "source",
            "status", "error_type", "pattern_key", name=f"pk_{TABLE}",
        ),  # fmt: skip
    )
    if _postgres():
        _row_level_security().enable_tenant_policy(TABLE)
    _backfill()


def downgrade() -> None:
    op.drop_table(TABLE)
    op.execute(f"DELETE FROM action_rollups WHERE period = {rollups.MINUTE}")
    for name in HISTOGRAM:
        op.execute(f"UPDATE action_rollups SET {name} = 0 WHERE {name} IS NULL")
    _set_histogram_nullable(False)
