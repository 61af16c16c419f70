"""Destinations: where each tenant's records are delivered (log streams out).

`destinations` is a tenant table (row-level security, like every other one); `secret_keys`
holds the generated key that encrypts destination secrets when SECRETS_ENCRYPTION_KEY is not
set, a reference table read before any tenant is known.

Revision ID: 0018_destinations
Revises: 0017_genai_rollups
Create Date: 2026-12-06
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa

from alembic import op

revision: str = "0018_destinations"
down_revision: str | None = "0017_genai_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _row_level_security() -> ModuleType:
    path = Path(__file__).with_name("0010_row_level_security.py")
    spec = importlib.util.spec_from_file_location("row_level_security", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.create_table(
        "secret_keys",
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_secret_keys"),
    )
    op.create_table(
        "destinations",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("config", sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("kinds", sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("filters", sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("delivered_through", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.String(1024), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_holder", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_destinations_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_destinations"),
    )  # fmt: skip
    if op.get_bind().dialect.name == "postgresql":
        _row_level_security().enable_tenant_policy("destinations")


def downgrade() -> None:
    op.drop_table("destinations")
    op.drop_table("secret_keys")
