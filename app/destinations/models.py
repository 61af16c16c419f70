"""Tables of destinations: where each tenant's records are delivered, and the key of their secrets.

`destinations` holds a tenant's destination, its delivery position and its lease:

- `delivered_through` is the last stream event (`stream_events.seq`) delivered or passed over
  (filtered out); delivery resumes after it, on any worker, after any restart;
- `lease_holder` / `lease_expires_at`: the one sender that delivers it now. A sender takes the
  lease with an UPDATE of this row that only matches when the lease is free or expired, and
  only moves `delivered_through` while it holds the lease, so two senders never interleave;
- `config` keeps the plain settings; `secrets` the secret ones (tokens, keys), encrypted
  (app/destinations/secrets.py).

`secret_keys` is the generated encryption key, when SECRETS_ENCRYPTION_KEY is not set: one row
that every worker and host reads (a reference table: it is read before any tenant is known).
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_id, utcnow


class Destination(Base):
    __tablename__ = "destinations"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(20))
    config: Mapped[Any] = mapped_column(JSONType, default=dict)
    secrets: Mapped[str | None] = mapped_column(Text)
    kinds: Mapped[Any] = mapped_column(JSONType, default=list)
    filters: Mapped[Any] = mapped_column(JSONType, default=dict)
    state: Mapped[str] = mapped_column(String(10), default="active")
    delivered_through: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1024))
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Since when every attempt has met a permanent refusal (None: the last one did not).
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_holder: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SecretKey(Base):
    """The generated key that encrypts destination secrets (one row, `name` = "generated")."""

    __tablename__ = "secret_keys"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    key: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
