"""Viewer tokens: who may see which of a tenant's records through an embedded console.

Only a SHA-256 digest of each token's secret is stored; the token itself is shown once, at
creation. `filters` narrow every view the token opens (app/viewer/scope.py).
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, ForeignKey, Index, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_id, utcnow


class ViewerToken(Base):
    __tablename__ = "viewer_tokens"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        Index("ix_viewer_tokens_tenant_expires", "tenant_id", "expires_at"),
    )

    id: Mapped[UUID] = mapped_column(default=new_id)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    secret_hash: Mapped[str] = mapped_column(String(64))
    filters: Mapped[Any] = mapped_column(JSONType)
    kinds: Mapped[Any] = mapped_column(JSONType)
    embed_origin: Mapped[str | None] = mapped_column(String(255))
    can_export: Mapped[bool] = mapped_column(Boolean)
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
