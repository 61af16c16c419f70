"""An action's place in the live stream, kept on its own row.

`action_logs.stream_seq` is the stream number (`stream_heads.seq`) of the action's latest
event: the action as recorded, or as last changed. The stream reads an action's event from the
row itself instead of from a copy in `stream_events`, which now holds only what is not a
current action row (audit events, signed tree heads, and the earlier versions of changed
actions). Existing rows keep NULL: their events are already in `stream_events`. The partial
index serves the stream's reads by number, tenant first.

Revision ID: 0023_action_stream_numbers
Revises: 0022_subjects
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0023_action_stream_numbers"
down_revision: str | None = "0022_subjects"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_action_logs_tenant_stream"


def upgrade() -> None:
    op.add_column("action_logs", sa.Column("stream_seq", sa.BigInteger(), nullable=True))
    op.create_index(
        INDEX,
        "action_logs",
        ["tenant_id", "stream_seq"],
        postgresql_where=sa.text("stream_seq IS NOT NULL"),
        sqlite_where=sa.text("stream_seq IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="action_logs")
    with op.batch_alter_table("action_logs") as batch:
        batch.drop_column("stream_seq")
