"""The Merkle log of each tenant's audit events: perfect-subtree hashes and kept tree heads.

`audit_merkle_nodes` holds, per tenant, the hash of every perfect subtree of the RFC 9162 tree
whose leaves are the tenant's audit events in sequence order (app/proofs/merkle.py); level 0
rows name their event. `audit_tree_heads` keeps the signed heads. Both are tenant tables
under the tenant policy of 0010.

Existing events are counted in, one tenant at a time (set as the current tenant for row-level
security), in sequence order. Events that retention deleted before this upgrade cannot be: a
leaf of such an event holds the hash of 32 zero bytes in place of the event's hash, so later
events still sit at their sequence and every proof of a stored event still verifies.

Revision ID: 0019_merkle_and_subjects
Revises: 0018_destinations
Create Date: 2026-12-06
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa

from alembic import op
from app.audits import merkle

revision: str = "0019_merkle_and_subjects"
down_revision: str | None = "0018_destinations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NODES = "audit_merkle_nodes"
HEADS = "audit_tree_heads"
CHUNK = 5000
PRUNED_LEAF = bytes(32)  # the leaf data of an event deleted before the log existed


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


def _create_tables() -> None:
    op.create_table(
        NODES,
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.Column("audit_id", sa.Uuid(), nullable=True),
        _tenant_fk(NODES),
        sa.PrimaryKeyConstraint("tenant_id", "level", "position", name=f"pk_{NODES}"),
    )
    op.create_index(
        f"ix_{NODES}_tenant_audit",
        NODES,
        ["tenant_id", "audit_id"],
        postgresql_where=sa.text("level = 0"),
        sqlite_where=sa.text("level = 0"),
    )
    op.create_table(
        HEADS,
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        _tenant_fk(HEADS),
        sa.PrimaryKeyConstraint("tenant_id", "tree_size", name=f"pk_{HEADS}"),
    )


def _backfill_tenant(bind: sa.Connection, tenant_id: Any, size: int) -> None:
    audits = sa.table(
        "audit_logs",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("sequence", sa.BigInteger()),
        sa.column("id", sa.Uuid()),
        sa.column("hash", sa.String()),
    )
    nodes = sa.table(
        NODES,
        sa.column("tenant_id", sa.Uuid()),
        sa.column("level", sa.SmallInteger()),
        sa.column("position", sa.BigInteger()),
        sa.column("hash", sa.LargeBinary()),
        sa.column("audit_id", sa.Uuid()),
    )
    frontier: dict[int, bytes] = {}
    done = 0
    while done < size:
        rows = bind.execute(
            sa.select(audits.c.sequence, audits.c.id, audits.c.hash)
            .where(audits.c.tenant_id == tenant_id, audits.c.sequence > done)
            .order_by(audits.c.sequence)
            .limit(CHUNK)
        ).all()
        leaves: list[tuple[bytes, Any]] = []
        for sequence, audit_id, hash_ in rows:
            leaves += [(PRUNED_LEAF, None)] * (sequence - 1 - done - len(leaves))
            leaves.append((bytes.fromhex(hash_), audit_id))
        if not rows:
            leaves = [(PRUNED_LEAF, None)] * (size - done)
        added = merkle.append_leaves(frontier, done, (merkle.leaf_hash(d) for d, _ in leaves))
        ids = {done + offset: audit_id for offset, (_, audit_id) in enumerate(leaves)}
        values = [
            {
                "tenant_id": tenant_id,
                "level": level,
                "position": position,
                "hash": value,
                "audit_id": ids[position] if level == 0 else None,
            }
            for level, position, value in added
        ]
        for start in range(0, len(values), 1000):
            bind.execute(sa.insert(nodes), values[start : start + 1000])
        done += len(leaves)


def _backfill() -> None:
    bind = op.get_bind()
    tenants = sa.table("tenants", sa.column("id", sa.Uuid()))
    heads = sa.table(
        "audit_chain_heads",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("sequence", sa.BigInteger()),
    )
    for (tenant_id,) in bind.execute(sa.select(tenants.c.id)).all():
        if bind.dialect.name == "postgresql":
            bind.execute(
                sa.text("SELECT set_config('app.tenant_id', :tenant, true)"),
                {"tenant": str(tenant_id)},
            )
        size = bind.scalar(sa.select(heads.c.sequence).where(heads.c.tenant_id == tenant_id))
        if size:
            _backfill_tenant(bind, tenant_id, size)
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def upgrade() -> None:
    _create_tables()
    if op.get_bind().dialect.name == "postgresql":
        for table in (NODES, HEADS):
            _row_level_security().enable_tenant_policy(table)
    _backfill()


def downgrade() -> None:
    op.drop_table(HEADS)
    op.drop_index(f"ix_{NODES}_tenant_audit", table_name=NODES)
    op.drop_table(NODES)
