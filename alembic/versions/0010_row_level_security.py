"""Row-level security: a non-owner role for the service, and a tenant policy on every tenant table.

Defence in depth (see app/core/tenancy.py): the service's connections `SET ROLE actionlog_app`,
a role that owns nothing and does not bypass policies, and every table holding a `tenant_id`
(except the reference tables, read before a tenant is known) gets row-level security, enabled
and forced, with one policy for reading and writing: the row's tenant must be the one of
`app.tenant_id`, which the service sets per transaction. Without it a query sees no row.

The tables are found in the catalog (every table of the schema with a `tenant_id` column), not
in a list that could drift; a later migration that adds a tenant table calls
`enable_tenant_policy` for it (tests/hardening/test_row_level_security.py fails otherwise).
Roles are cluster-wide: the role is created only if missing, and left in place on downgrade
(other databases of the cluster may use it); its grants on this database are revoked.

PostgreSQL only; nothing on SQLite.

Revision ID: 0010_row_level_security
Revises: 0009_retention
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010_row_level_security"
down_revision: str | None = "0009_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "actionlog_app"
REFERENCE_TABLES = ("tenants", "api_keys", "audit_signing_keys")
POLICY = "tenant_isolation"
TENANT_MATCHES = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def tenant_tables() -> list[str]:
    """The tables of the current schema with a `tenant_id` column, reference tables aside."""
    rows = op.get_bind().execute(
        sa.text(
            "SELECT c.table_name FROM information_schema.columns c"
            " JOIN information_schema.tables t"
            " ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
            " WHERE c.table_schema = current_schema() AND c.column_name = 'tenant_id'"
            " AND t.table_type = 'BASE TABLE' ORDER BY c.table_name"
        )
    )
    return [name for (name,) in rows if name not in REFERENCE_TABLES]


def enable_tenant_policy(table: str) -> None:
    op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    op.execute(
        f'CREATE POLICY {POLICY} ON "{table}" USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})'
    )


def disable_tenant_policy(table: str) -> None:
    op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
    op.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')


def upgrade() -> None:
    if not _postgres():
        return
    # Roles belong to the server: two databases migrated at once may both find it missing, and
    # the second CREATE then fails (unique_violation); the role is there either way.
    op.execute(
        f"DO $$ BEGIN"
        f" IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN"
        f" CREATE ROLE {ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;"
        f" END IF;"
        f" EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )
    # The login role must be a member to SET ROLE (a superuser always may).
    op.execute(
        f"DO $$ BEGIN"
        f" IF NOT pg_has_role(current_user, '{ROLE}', 'MEMBER') THEN"
        f" EXECUTE format('GRANT {ROLE} TO %I', current_user);"
        f" END IF; END $$"
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
    op.execute(f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA public TO {ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ROLE}")
    # Tables and sequences that later migrations create (as this owner) get the same grants.
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {TABLE_PRIVILEGES} ON TABLES TO {ROLE}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {ROLE}"
    )
    # Alembic's own bookkeeping is the owner's business.
    op.execute(f"REVOKE ALL ON alembic_version FROM {ROLE}")
    for table in tenant_tables():
        enable_tenant_policy(table)


def downgrade() -> None:
    if not _postgres():
        return
    for table in tenant_tables():
        disable_tenant_policy(table)
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {ROLE}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE {TABLE_PRIVILEGES} ON TABLES FROM {ROLE}"
    )
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ROLE}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {ROLE}")
