"""Leases of open streams: at most STREAM_MAX_PER_KEY per API key, across workers and hosts.

A stream holds a lease while it is open and its worker renews it; a lease that was not renewed
(its worker died) expires and counts for nothing.
"""

from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime


class StreamLease(Base):
    __tablename__ = "stream_leases"
    __table_args__ = (Index("ix_stream_leases_tenant_key", "tenant_id", "key_id"),)

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    key_id: Mapped[UUID] = mapped_column(Uuid)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
