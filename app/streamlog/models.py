"""The stream's event log: each tenant's events, numbered by its counter row.

The stream is one sequence per tenant, numbered by `seq`: one event per action recorded or
changed, per audit row and per signed tree head kept (kind `tree_head`). The number is taken
from the tenant's `stream_heads` row inside the writing transaction, and that row stays locked
until the transaction ends, so a tenant's transactions take their numbers in the order in which
they commit, and a rolled back one gives its numbers back. A reader that has seen `seq` N has
therefore seen every event before it: the stream is gap-free in commit order, and `seq` is the
SSE event id.

A record is its own event: an action's row holds the number of its latest event, an audit
row that of its event (`stream_seq`), so no record is written twice. `stream_events` holds
every other event, each with the record as it was sent (the JSON of the list routes) and the
fields the stream filters on: signed tree heads, and the earlier versions of changed actions,
so that a change still shows the record as it was then. app/streams/events.py reads them all
as one stream. Events older than STREAM_RETENTION_HOURS are pruned (a record's row stays: it is
the record, but the stream passes it); `pruned_through` tells a client resuming from before
that point that its events are gone.

This domain sits below actions, audits and proofs, which write to it in their transactions; it
knows nothing of them (they build their events' payloads). app/streams/events.py reads the
stream, records' rows included, for the live stream and for destinations.
"""

from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class StreamHead(Base):
    __tablename__ = "stream_heads"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    pruned_through: Mapped[int] = mapped_column(BigInteger, default=0)


class StreamEvent(Base):
    __tablename__ = "stream_events"
    __table_args__ = (Index("ix_stream_events_tenant_created", "tenant_id", "created_at"),)

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    record_id: Mapped[UUID] = mapped_column(Uuid)
    action_type: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str | None] = mapped_column(String(20))
    provider_name: Mapped[str | None] = mapped_column(String(100))
    service: Mapped[str | None] = mapped_column(String(100))
    user_id: Mapped[str | None] = mapped_column(String(255))
    session_id: Mapped[str | None] = mapped_column(String(255))
    correlation_id: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
