"""The stored Merkle log of each tenant's audit events: perfect-subtree hashes and kept heads.

Both tables are append-only and hold hashes, never event content: retention deletes audit
rows, not these, so a proof for a pruned event can still be answered (app/proofs/merkle.py).
"""

from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime


class AuditMerkleNode(Base):
    """The hash of leaves [position·2^level, (position+1)·2^level) of a tenant's tree.

    Level 0 rows are the leaves, and name their audit event (`audit_id`), so that a proof can
    be asked for by event id after retention deleted the event's row.
    """

    __tablename__ = "audit_merkle_nodes"
    __table_args__ = (
        Index(
            "ix_audit_merkle_nodes_tenant_audit",
            "tenant_id",
            "audit_id",
            postgresql_where=text("level = 0"),
            sqlite_where=text("level = 0"),
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    audit_id: Mapped[UUID | None] = mapped_column()


class AuditTreeHead(Base):
    """A tree head signed on the service's schedule (or by `actionlog tree-head`), kept."""

    __tablename__ = "audit_tree_heads"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root_hash: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
