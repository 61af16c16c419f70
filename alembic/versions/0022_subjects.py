"""Personal fields of audit events sealed per data subject: the declaration, the subjects'
keys, the service key that wraps them, and the column of an audit row's sealed fields.

`subject_configs`, `subject_keys` and `subject_wrapping_keys` (the tenant's key that wraps its
subjects' keys) are tenant tables under the tenant policy of 0010.
`audit_logs.sealed` is NULL on every existing row, which therefore hashes as before.

Revision ID: 0022_subjects
Revises: 0020_viewer_and_schemas
Create Date: 2026-12-06
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from alembic import op

revision: str = "0022_subjects"
down_revision: str | None = "0020_viewer_and_schemas"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONFIGS = "subject_configs"
KEYS = "subject_keys"
WRAPPING = "subject_wrapping_keys"
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


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
    op.create_table(
        CONFIGS,
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("subject_path", sa.String(255), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk(CONFIGS),
        sa.PrimaryKeyConstraint("tenant_id", name=f"pk_{CONFIGS}"),
    )
    op.create_table(
        KEYS,
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("wrapped_key", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        _tenant_fk(KEYS),
        sa.PrimaryKeyConstraint("tenant_id", "digest", name=f"pk_{KEYS}"),
    )
    op.create_table(
        WRAPPING,
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk(WRAPPING),
        sa.PrimaryKeyConstraint("tenant_id", name=f"pk_{WRAPPING}"),
    )
    op.add_column("audit_logs", sa.Column("sealed", JSON, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        for table in (CONFIGS, KEYS, WRAPPING):
            _row_level_security().enable_tenant_policy(table)


def downgrade() -> None:
    with op.batch_alter_table("audit_logs") as batch:
        batch.drop_column("sealed")
    op.drop_table(WRAPPING)
    op.drop_table(KEYS)
    op.drop_table(CONFIGS)
