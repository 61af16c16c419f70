"""Signed tree heads of each tenant's audit Merkle log, kept (the log itself is stored by the
audit writer: `AuditMerkleNode`, app/audits/merkle_log.py)."""

from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime


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
