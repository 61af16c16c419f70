"""GenAI rollups: calls and token sums per model, so that statistics report them exactly
without reading rows.

`action_genai_rollups` keeps, per tenant, period (a minute, an hour or a day), rollup
dimensions and model, the GenAI calls (actions whose metadata names a model) and the sums of
their input and output tokens (app/actions/genai.py). Existing rows are counted in by the
upgrade, one tenant at a time, with the statements of `actionlog rollups rebuild`.

Revision ID: 0017_genai_rollups
Revises: 0014_text_search_under_rls
Create Date: 2026-12-06
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa

from alembic import op
from app.actions import rollup_rebuild, rollups

revision: str = "0017_genai_rollups"
down_revision: str | None = "0014_text_search_under_rls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "action_genai_rollups"


def _row_level_security() -> ModuleType:
    path = Path(__file__).with_name("0010_row_level_security.py")
    spec = importlib.util.spec_from_file_location("row_level_security", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
        for period in rollups.PERIODS:
            bind.execute(rollup_rebuild.genai_rebuild_statement(dialect, period, tenant_id))
    if dialect == "postgresql":
        bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def upgrade() -> None:
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
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=f"fk_{TABLE}_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "period", "start", "action_type", "provider_name", "service", "source",
            "status", "model", name=f"pk_{TABLE}",
        ),  # fmt: skip
    )
    if op.get_bind().dialect.name == "postgresql":
        _row_level_security().enable_tenant_policy(TABLE)
    _backfill()


def downgrade() -> None:
    op.drop_table(TABLE)
