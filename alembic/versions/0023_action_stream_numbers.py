"""A record's place in the live stream, kept on its own row.

`action_logs.stream_seq` is the stream number (`stream_heads.seq`) of the action's latest
event: the action as recorded, or as last changed; `audit_logs.stream_seq` that of the audit
event. The stream reads these events from the rows themselves instead of from a copy in
`stream_events`, which now holds only what is not a current record (signed tree heads, and the
earlier versions of changed actions). Existing rows keep NULL: their events are already in
`stream_events`. The partial indexes serve the stream's reads by number, tenant first.

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

TABLES = ("action_logs", "audit_logs")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("stream_seq", sa.BigInteger(), nullable=True))
        op.create_index(
            f"ix_{table}_tenant_stream",
            table,
            ["tenant_id", "stream_seq"],
            postgresql_where=sa.text("stream_seq IS NOT NULL"),
            sqlite_where=sa.text("stream_seq IS NOT NULL"),
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_tenant_stream", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("stream_seq")
