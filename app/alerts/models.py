"""Tables of alerting: webhook endpoints, rules, their evaluation state, events and the outbox.

A state change and the notifications it causes are written in one transaction (the rule's
`alert_states` row, an `alert_events` row, one `alert_deliveries` row per endpoint), so a
notification exists exactly when its state change committed. The sender works through
`alert_deliveries` (the outbox) and logs every try in `alert_delivery_attempts`.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_id, utcnow


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(1024))
    # The signing secret must be readable to sign with, so it is stored as issued.
    secret: Mapped[str] = mapped_column(String(100))
    # After a rotation the old secret also signs, until `previous_secret_expires_at`.
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertRule(Base):
    __tablename__ = "alert_rules"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    metric: Mapped[str] = mapped_column(String(30))
    op: Mapped[str] = mapped_column(String(2))
    threshold: Mapped[float] = mapped_column(Float)
    window_minutes: Mapped[int] = mapped_column(Integer)
    min_count: Mapped[int | None] = mapped_column(Integer)
    filters: Mapped[Any] = mapped_column(JSONType, default=dict)
    group_by: Mapped[str | None] = mapped_column(String(30))
    webhook_ids: Mapped[Any] = mapped_column(JSONType, default=list)
    cooldown_minutes: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    preset: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertState(Base):
    """Where one rule (and one group of it) stands: `ok`, `firing` or `resolved`."""

    __tablename__ = "alert_states"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "rule_id"],
            ["alert_rules.tenant_id", "alert_rules.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    rule_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    group_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(10))
    value: Mapped[float | None] = mapped_column(Float)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertEvent(Base):
    """A rule (group) that fired or resolved, with the value measured then. Append-only."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_tenant_created", "tenant_id", "created_at", "id"),)

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    rule_id: Mapped[UUID] = mapped_column(Uuid)
    rule_name: Mapped[str] = mapped_column(String(255))
    group_key: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(10))
    metric: Mapped[str] = mapped_column(String(30))
    op: Mapped[str] = mapped_column(String(2))
    threshold: Mapped[float] = mapped_column(Float)
    value: Mapped[float | None] = mapped_column(Float)
    count: Mapped[int] = mapped_column(BigInteger)
    window_minutes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertDelivery(Base):
    """The outbox: one notification to one endpoint, until delivered or given up."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        Index("ix_alert_deliveries_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_alert_deliveries_status_next", "status", "next_attempt_at"),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    endpoint_id: Mapped[UUID] = mapped_column(Uuid)
    event_id: Mapped[UUID | None] = mapped_column(Uuid)
    message_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(50))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(1024))
    last_duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertDeliveryAttempt(Base):
    __tablename__ = "alert_delivery_attempts"
    __table_args__ = (
        Index("ix_alert_delivery_attempts_tenant_delivery", "tenant_id", "delivery_id"),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    delivery_id: Mapped[UUID] = mapped_column(Uuid)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(1024))
