"""Viewer tokens, action schemas, and the schema findings of actions.

- `viewer_tokens`: the tenant's viewer links (a digest of each secret, the filters that narrow
  what the link shows, its embedding origin, expiry and revocation);
- `action_schema_versions` (every version of every action type's schema, append-only) and
  `action_schemas` (the version in force per action type, and a count of its changes that
  workers watch to drop their compiled validators);
- `action_logs.schema_errors` / `schema_version`: what a `warn` schema found, and a partial
  index for listing those actions.

New tables are tenant tables: keys lead with `tenant_id`, and on PostgreSQL each gets the
row-level security policy of migration 0010.

Revision ID: 0020_viewer_and_schemas
Revises: 0019_merkle_and_subjects
Create Date: 2026-12-06
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa

from alembic import op

revision: str = "0020_viewer_and_schemas"
down_revision: str | None = "0019_merkle_and_subjects"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(
    sa.dialects.postgresql.JSONB(none_as_null=True), "postgresql"
)
TABLES = ("viewer_tokens", "action_schema_versions", "action_schemas")
SCHEMA_ERRORS_INDEX = "ix_action_logs_tenant_schema_errors"


def _row_level_security() -> ModuleType:
    path = Path(__file__).with_name("0010_row_level_security.py")
    spec = importlib.util.spec_from_file_location("row_level_security", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.add_column("action_logs", sa.Column("schema_errors", JSON, nullable=True))
    op.add_column("action_logs", sa.Column("schema_version", sa.Integer(), nullable=True))
    op.create_index(
        SCHEMA_ERRORS_INDEX,
        "action_logs",
        ["tenant_id", "created_at"],
        postgresql_where=sa.text("schema_errors IS NOT NULL"),
        sqlite_where=sa.text("schema_errors IS NOT NULL"),
    )
    op.create_table(
        "viewer_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("filters", JSON, nullable=False),
        sa.Column("kinds", JSON, nullable=False),
        sa.Column("embed_origin", sa.String(255), nullable=True),
        sa.Column("can_export", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        _tenant_fk("viewer_tokens"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_viewer_tokens"),
    )
    op.create_index("ix_viewer_tokens_tenant_expires", "viewer_tokens", ["tenant_id", "expires_at"])
    op.create_table(
        "action_schema_versions",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("action_type", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("request_payload", JSON, nullable=True),
        sa.Column("response_data", JSON, nullable=True),
        sa.Column("metadata", JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk("action_schema_versions"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "action_type", "version", name="pk_action_schema_versions"
        ),
    )
    op.create_table(
        "action_schemas",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("action_type", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk("action_schemas"),
        sa.PrimaryKeyConstraint("tenant_id", "action_type", name="pk_action_schemas"),
    )
    if op.get_bind().dialect.name == "postgresql":
        policies = _row_level_security()
        for table in TABLES:
            policies.enable_tenant_policy(table)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
    op.drop_index(SCHEMA_ERRORS_INDEX, table_name="action_logs")
    with op.batch_alter_table("action_logs") as batch:
        batch.drop_column("schema_version")
        batch.drop_column("schema_errors")
