"""Stored action schemas: every version kept, and the current one of each action type.

`action_schema_versions` is append-only: each PUT adds version n+1 of its action type.
`action_schemas` holds one row per action type a tenant ever gave a schema: the version in
force (or none, `active` false, after a DELETE) and `changes`, which counts every put and
delete of that type. Workers keep the compiled validators in memory and reload when the sum of
`changes` (with the number of rows) moves: a cheap, strictly growing mark of any change from
any worker or host (app/action_schemas/catalog.py).
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, ForeignKey, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, utcnow


class ActionSchemaVersion(Base):
    __tablename__ = "action_schema_versions"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "action_type", "version"),)

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    action_type: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(10))
    request_payload: Mapped[Any] = mapped_column(JSONType, nullable=True)
    response_data: Mapped[Any] = mapped_column(JSONType, nullable=True)
    metadata_: Mapped[Any] = mapped_column("metadata", JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ActionSchema(Base):
    __tablename__ = "action_schemas"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "action_type"),)

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    action_type: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean)
    changes: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
