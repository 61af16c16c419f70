"""Action rollups: per tenant, hour or day, and dimensions: counts, timing sums, a histogram.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HISTOGRAM_BUCKETS = 71


def upgrade() -> None:
    op.create_table(
        "action_rollups",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action_type", sa.String(100), nullable=False),
        sa.Column("provider_name", sa.String(100), nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("timed", sa.BigInteger(), nullable=False),
        sa.Column("time_sum", sa.BigInteger(), nullable=False),
        *(
            sa.Column(f"h{i:02d}", sa.BigInteger(), nullable=False)
            for i in range(HISTOGRAM_BUCKETS)
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_action_rollups_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "period",
            "start",
            "action_type",
            "provider_name",
            "service",
            "source",
            "status",
            name="pk_action_rollups",
        ),
    )


def downgrade() -> None:
    op.drop_table("action_rollups")
