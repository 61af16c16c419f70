"""All-time user rollups: the most active users over all time read one row per user.

`stats/users` without a start summed one daily user rollup per user and active day (61,656
rows for 2,000 users over 31 days at 1M rows; 0.5 s at 10M in bench/RESULTS.md). Each user
now also has a rollup of period 0 starting at the epoch, kept by every write like the hourly
and daily ones. Existing rows are counted in one tenant at a time (set as the current tenant
for row-level security) with the statement of `actionlog rollups rebuild`. No table changes:
the period is a new value of the key's `period` column.

Revision ID: 0013_all_time_user_rollups
Revises: 0012_text_search_indexes
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from app.actions import rollup_rebuild, rollups

revision: str = "0013_all_time_user_rollups"
down_revision: str | None = "0012_text_search_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    tenants = bind.execute(sa.select(sa.table("tenants", sa.column("id", sa.Uuid())).c.id))
    for (tenant_id,) in tenants.all():
        if dialect == "postgresql":
            bind.execute(
                sa.text("SELECT set_config('app.tenant_id', :tenant, true)"),
                {"tenant": str(tenant_id)},
            )
        bind.execute(rollup_rebuild.rebuild_users_statement(dialect, tenant_id, rollups.ALL_TIME))
    if dialect == "postgresql":
        bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    op.execute(f"DELETE FROM action_user_rollups WHERE period = {rollups.ALL_TIME}")
