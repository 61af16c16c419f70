"""Partial indexes for the sparse lookups: correlation and parent ids.

Most actions have neither a `correlation_id` nor a `parent_id`, yet every row was indexed
under both (as NULL). The filters on them compare with `=`, which never matches NULL, so
indexes of the rows that have one serve the same queries on both engines, and a row without
them costs two index insertions less (bytes and WAL per row: bench/RESULTS.md).

Revision ID: 0008_sparse_indexes
Revises: 0007_user_rollups
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008_sparse_indexes"
down_revision: str | None = "0007_user_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SPARSE = {
    "ix_action_logs_tenant_correlation": "correlation_id",
    "ix_action_logs_tenant_parent": "parent_id",
}


def upgrade() -> None:
    for name, column in SPARSE.items():
        op.drop_index(name, "action_logs")
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            name, "action_logs", ["tenant_id", column], postgresql_where=where, sqlite_where=where
        )


def downgrade() -> None:
    for name, column in SPARSE.items():
        op.drop_index(name, "action_logs")
        op.create_index(name, "action_logs", ["tenant_id", column])
