"""What the console's views read: audit events gain a correlation id; indexes by session.

- `audit_logs.correlation_id` (nullable): groups a change with the actions of the same incident,
  job or trace, for `GET /api/v1/logs/timeline`; indexed with the tenant first. Existing rows
  keep NULL, and the chain hash covers the field only when it is set, so they still verify.
- `action_logs (tenant_id, session_id, created_at)`: a session report reads every action of one
  `session_id` in time order; without it that is a scan of the tenant's rows (about 2 s for
  500,000 rows, measured by bench/console.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_logs", sa.Column("correlation_id", sa.String(255), nullable=True))
    op.create_index(
        "ix_audit_logs_tenant_correlation_created",
        "audit_logs",
        ["tenant_id", "correlation_id", "created_at"],
    )
    op.create_index(
        "ix_action_logs_tenant_session_created",
        "action_logs",
        ["tenant_id", "session_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_action_logs_tenant_session_created", table_name="action_logs")
    op.drop_index("ix_audit_logs_tenant_correlation_created", table_name="audit_logs")
    with op.batch_alter_table("audit_logs") as batch:
        batch.drop_column("correlation_id")
