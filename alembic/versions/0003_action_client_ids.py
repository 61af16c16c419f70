"""Client-generated action ids: the fingerprint of the body first recorded under an id.

A client that sends its own `id` can retry a write safely: the same id with the same body is
a replay, with another body a conflict. The fingerprint is kept only for such rows (NULL
otherwise, which costs a row nothing in PostgreSQL but a bit in its null bitmap).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("action_logs", sa.Column("request_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("action_logs") as batch:
        batch.drop_column("request_hash")
