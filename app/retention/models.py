"""The archive files that retention wrote, one row per file, committed with the delete.

A file whose row exists holds rows that are gone from the database; a file on disk without a
row is from a run that stopped before its delete committed (its rows are still in the
database), and the next run replaces it. So the rows listed here are the archive set: every
pruned row in exactly one file.
"""

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, new_id, utcnow


class ArchiveRecord(Base):
    __tablename__ = "retention_archives"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),  # tenant first, as every key (Citus)
        UniqueConstraint("tenant_id", "path"),
        Index("ix_retention_archives_tenant_kind_first", "tenant_id", "kind", "first_at"),
    )

    id: Mapped[UUID] = mapped_column(default=new_id)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(7))
    path: Mapped[str] = mapped_column(String(512))
    host: Mapped[str] = mapped_column(String(255))
    row_count: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_sequence: Mapped[int | None] = mapped_column(BigInteger)
    last_sequence: Mapped[int | None] = mapped_column(BigInteger)
    first_hash: Mapped[str | None] = mapped_column(String(64))
    last_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
