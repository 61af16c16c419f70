"""Index action logs by session, for the console's session report (seed 003).

A session report reads every action of one `session_id`, in time order; without an index
that is a scan of the tenant's rows (about 2 s for 500,000 rows, measured in
bench/CONSOLE.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_action_logs_tenant_session_created",
        "action_logs",
        ["tenant_id", "session_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_action_logs_tenant_session_created", table_name="action_logs")
