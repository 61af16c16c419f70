"""Every domain's ORM models, imported in one place for Alembic and the metadata."""

from app.actions.models import ActionLog, IdempotencyKey
from app.alerts.models import (
    AlertDelivery,
    AlertDeliveryAttempt,
    AlertEvent,
    AlertRule,
    AlertState,
    WebhookEndpoint,
)
from app.audits.models import AuditChainHead, AuditLog
from app.core.db import Base
from app.streamlog.models import StreamEvent, StreamHead
from app.streams.models import StreamLease
from app.tenants.models import ApiKey, Tenant

__all__ = [
    "ActionLog",
    "AlertDelivery",
    "AlertDeliveryAttempt",
    "AlertEvent",
    "AlertRule",
    "AlertState",
    "ApiKey",
    "AuditChainHead",
    "AuditLog",
    "Base",
    "IdempotencyKey",
    "StreamEvent",
    "StreamHead",
    "StreamLease",
    "Tenant",
    "WebhookEndpoint",
]
