"""Every domain's ORM models, imported in one place for Alembic and the metadata."""

from app.actions.models import ActionLog, IdempotencyKey
from app.audits.models import AuditChainHead, AuditCheckpoint, AuditLog, AuditSigningKey
from app.core.db import Base
from app.retention.models import ArchiveRecord
from app.tenants.models import ApiKey, Tenant

__all__ = [
    "ActionLog",
    "ApiKey",
    "ArchiveRecord",
    "AuditChainHead",
    "AuditCheckpoint",
    "AuditLog",
    "AuditSigningKey",
    "Base",
    "IdempotencyKey",
    "Tenant",
]
