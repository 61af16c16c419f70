"""Initial schema: tenants, API keys, action logs, audit logs and their chain, idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"
    )


def _newest_first_index(table: str) -> None:
    op.create_index(
        f"ix_{table}_tenant_created",
        table,
        ["tenant_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
    )


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("slug", name="uq_tenants_slug"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=True),
        sa.Column("revoked_at", _ts(), nullable=True),
        _tenant_fk("api_keys"),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    )
    op.create_index("ix_api_keys_tenant_id_created_at", "api_keys", ["tenant_id", "created_at"])

    op.create_table(
        "action_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("action_type", sa.String(100), nullable=False),
        sa.Column("action_name", sa.String(255), nullable=True),
        sa.Column("provider_name", sa.String(100), nullable=True),
        sa.Column("service", sa.String(100), nullable=True),
        sa.Column("source", sa.String(50), nullable=True),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("session_id", sa.String(255), nullable=True),
        sa.Column("correlation_id", sa.String(255), nullable=True),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("request_payload", _json(), nullable=False),
        sa.Column("response_data", _json(), nullable=True),
        sa.Column("metadata", _json(), nullable=False),
        sa.Column("steps", _json(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(255), nullable=True),
        sa.Column("execution_time_ms", sa.Integer(), nullable=True),
        sa.Column("started_at", _ts(), nullable=True),
        sa.Column("completed_at", _ts(), nullable=True),
        sa.Column("ip_address", sa.String(45), nullable=True),
        sa.Column("user_agent", sa.String(1024), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        _tenant_fk("action_logs"),
        sa.PrimaryKeyConstraint("id", name="pk_action_logs"),
    )
    _newest_first_index("action_logs")
    for name, columns in [
        ("status_created", ["status", "created_at"]),
        ("type_created", ["action_type", "created_at"]),
        ("provider_created", ["provider_name", "created_at"]),
        ("user_created", ["user_id", "created_at"]),
        ("correlation", ["correlation_id"]),
        ("parent", ["parent_id"]),
    ]:
        op.create_index(f"ix_action_logs_tenant_{name}", "action_logs", ["tenant_id", *columns])

    op.create_table(
        "audit_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("resource_type", sa.String(100), nullable=False),
        sa.Column("resource_id", sa.String(255), nullable=False),
        sa.Column("changes", _json(), nullable=False),
        sa.Column("ip_address", sa.String(45), nullable=True),
        sa.Column("user_agent", sa.String(1024), nullable=True),
        sa.Column("metadata", _json(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        _tenant_fk("audit_logs"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_logs"),
        sa.UniqueConstraint("tenant_id", "sequence", name="uq_audit_logs_tenant_id_sequence"),
    )
    _newest_first_index("audit_logs")
    op.create_index(
        "ix_audit_logs_tenant_resource",
        "audit_logs",
        ["tenant_id", "resource_type", "resource_id", "sequence"],
    )
    op.create_index(
        "ix_audit_logs_tenant_action_created", "audit_logs", ["tenant_id", "action", "created_at"]
    )
    op.create_index(
        "ix_audit_logs_tenant_user_created", "audit_logs", ["tenant_id", "user_id", "created_at"]
    )

    op.create_table(
        "audit_chain_heads",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        _tenant_fk("audit_chain_heads"),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_audit_chain_heads"),
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", _json(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        _tenant_fk("idempotency_keys"),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("audit_chain_heads")
    op.drop_table("audit_logs")
    op.drop_table("action_logs")
    op.drop_table("api_keys")
    op.drop_table("tenants")
