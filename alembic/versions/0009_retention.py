"""Retention: audit retention per tenant, signed audit checkpoints, the archive index.

`audit_checkpoints` lets a chain whose oldest rows were pruned still verify from its latest
checkpoint; `audit_signing_keys` holds the Ed25519 key that signs them (shared by every
worker and host through the database); `retention_archives` lists the archive files whose
rows were deleted, one row per file, committed with the delete.

Revision ID: 0009_retention
Revises: 0008_sparse_indexes
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009_retention"
down_revision: str | None = "0008_sparse_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.add_column("tenants", sa.Column("audit_retention_days", sa.Integer(), nullable=True))
    op.create_table(
        "audit_checkpoints",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        _tenant_fk("audit_checkpoints"),
        sa.PrimaryKeyConstraint("tenant_id", "sequence", name="pk_audit_checkpoints"),
    )
    op.create_table(
        "audit_signing_keys",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("private_seed", sa.String(64), nullable=True),
        sa.Column("generated", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_audit_signing_keys"),
    )
    op.create_table(
        "retention_archives",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("first_at", _ts(), nullable=False),
        sa.Column("last_at", _ts(), nullable=False),
        sa.Column("first_sequence", sa.BigInteger(), nullable=True),
        sa.Column("last_sequence", sa.BigInteger(), nullable=True),
        sa.Column("first_hash", sa.String(64), nullable=True),
        sa.Column("last_hash", sa.String(64), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        _tenant_fk("retention_archives"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_retention_archives"),
        sa.UniqueConstraint("tenant_id", "path", name="uq_retention_archives_tenant_id_path"),
    )
    op.create_index(
        "ix_retention_archives_tenant_kind_first",
        "retention_archives",
        ["tenant_id", "kind", "first_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_retention_archives_tenant_kind_first", "retention_archives")
    op.drop_table("retention_archives")
    op.drop_table("audit_signing_keys")
    op.drop_table("audit_checkpoints")
    # Not batch mode: on SQLite it would copy `tenants` and drop the original, and with foreign
    # keys on, that drop deletes every tenant's rows (ON DELETE CASCADE). SQLite (3.35+) drops
    # a column in place.
    op.drop_column("tenants", "audit_retention_days")
