"""Per-user rollups: each user's actions, failures and newest action per hour and per day.

`stats/users` used to group every matching row by user; on a busy tenant that is every row of
the range. These rollups, kept exact by every write as action_rollups are, bound it by the
number of users and periods instead. Existing rows are counted in by the upgrade itself (one
INSERT … SELECT per period, window functions on both engines).

Revision ID: 0007_user_rollups
Revises: 0006_citus_keys
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007_user_rollups"
down_revision: str | None = "0006_citus_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOUR, DAY = 3600, 86400
START = {
    ("postgresql", HOUR): "timezone('UTC', date_trunc('hour', timezone('UTC', created_at)))",
    ("postgresql", DAY): "timezone('UTC', date_trunc('day', timezone('UTC', created_at)))",
    ("sqlite", HOUR): "strftime('%Y-%m-%d %H:00:00.000000', created_at)",
    ("sqlite", DAY): "strftime('%Y-%m-%d 00:00:00.000000', created_at)",
}
BACKFILL = """
INSERT INTO action_user_rollups (tenant_id, period, start, user_id, total, failed,
                                 last_action_at, last_action_id, last_action_type)
SELECT tenant_id, period, start, user_id, total, failed, created_at, id, action_type
FROM (
    SELECT tenant_id, {period} AS period, {start} AS start, user_id, created_at, id, action_type,
           count(*) OVER w AS total,
           sum(CASE WHEN status IN ('failure', 'timeout') THEN 1 ELSE 0 END) OVER w AS failed,
           row_number() OVER (PARTITION BY tenant_id, {start}, user_id
                              ORDER BY created_at DESC, id DESC) AS rank
    FROM action_logs
    WHERE user_id IS NOT NULL
    WINDOW w AS (PARTITION BY tenant_id, {start}, user_id)
) AS ranked
WHERE rank = 1
"""


def upgrade() -> None:
    op.create_table(
        "action_user_rollups",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("last_action_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_action_id", sa.Uuid(), nullable=True),
        sa.Column("last_action_type", sa.String(100), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_action_user_rollups_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "period", "start", "user_id", name="pk_action_user_rollups"
        ),
    )
    dialect = op.get_bind().dialect.name
    for period in (HOUR, DAY):
        start = START[(dialect, period)]
        op.execute(BACKFILL.format(period=period, start=start))


def downgrade() -> None:
    op.drop_table("action_user_rollups")
