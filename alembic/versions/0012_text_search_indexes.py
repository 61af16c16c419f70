"""Text search indexes: `q=` answers from trigram indexes on PostgreSQL.

`q` matches a case-folded substring of `action_name` or `error_message`. Without an index
PostgreSQL scanned the tenant's rows (2.6 s at 1M rows in bench/RESULTS.md), and, having no
statistics of `lower(column)`, could not tell a common term from a rare one. Two GIN indexes,
tenant first, over `lower(column)` with `gin_trgm_ops` (extensions pg_trgm and btree_gin, both
trusted: the database owner may create them) answer a rare term from the index, and ANALYZE's
statistics of the indexed expressions let the planner walk the newest-first index for a
common one. SQLite is unchanged.

On a large table, build the two indexes first without blocking writes (`CREATE INDEX
CONCURRENTLY IF NOT EXISTS`, the statements below) and then upgrade: this migration creates
them only if they are missing. The downgrade drops the indexes and leaves the extensions.

Revision ID: 0012_text_search_indexes
Revises: 0011_minute_and_failure_rollups
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_text_search_indexes"
down_revision: str | None = "0011_minute_and_failure_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("action_name", "error_message")


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    for column in COLUMNS:
        op.execute(
            f"CREATE INDEX IF NOT EXISTS ix_action_logs_tenant_{column}_trgm ON action_logs "
            f"USING gin (tenant_id, lower({column}) gin_trgm_ops)"
        )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(f"DROP INDEX IF EXISTS ix_action_logs_tenant_{column}_trgm")
