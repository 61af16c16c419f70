"""Every domain's ORM models, imported in one place for Alembic and the metadata."""

from app.actions.models import ActionLog, IdempotencyKey
from app.audits.models import AuditChainHead, AuditLog
from app.core.db import Base
from app.tenants.models import ApiKey, Tenant

__all__ = ["ActionLog", "ApiKey", "AuditChainHead", "AuditLog", "Base", "IdempotencyKey", "Tenant"]
