"""Tenant-first primary keys: every key of a tenant table holds `tenant_id` (Citus-ready).

A distributed PostgreSQL (Citus) shards tenant tables by `tenant_id` and can only enforce a
primary key, unique constraint or foreign key that includes the distribution column. Actions
and audit events were keyed by `id` alone; they are now keyed by `(tenant_id, id)`, so an id
is unique per tenant (client-generated action ids included). Every other tenant table already
led its keys with `tenant_id`. The new key's index also serves every lookup by id, which is
always made for one tenant.

On PostgreSQL the key is swapped in place (the table keeps its rows; the new index is built
while the table is locked, which a large table pays once). SQLite cannot alter a primary key,
so the table is rebuilt with its rows (Alembic's batch mode).

Revision ID: 0006_citus_keys
Revises: 0005
Create Date: 2026-12-01
"""

import warnings
from collections.abc import Sequence

from sqlalchemy.exc import SAWarning

from alembic import op

revision: str = "0006_citus_keys"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("action_logs", "audit_logs")


def _swap_key(table: str, columns: list[str]) -> None:
    name = f"pk_{table}"
    if op.get_bind().dialect.name == "sqlite":
        # The copy starts from the reflected columns, still flagged with the old key; the new
        # key replaces it, which SQLAlchemy reports (harmlessly) as a mismatch.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Table '_alembic_tmp_", SAWarning)
            with op.batch_alter_table(table, recreate="always") as batch:
                batch.create_primary_key(name, columns)
        return
    op.drop_constraint(name, table, type_="primary")
    op.create_primary_key(name, table, columns)


def upgrade() -> None:
    for table in TABLES:
        _swap_key(table, ["tenant_id", "id"])


def downgrade() -> None:
    # Fails, as it should, if two tenants hold the same id by then.
    for table in TABLES:
        _swap_key(table, ["id"])
