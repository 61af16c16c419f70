"""Dependencies of the audit routes: the service, with the configured payload rules."""

from typing import Annotated

from fastapi import Depends

from app.audits.service import AuditService
from app.core.auth import SessionDep
from app.core.deps import PayloadRulesDep


async def get_audit_service(session: SessionDep, rules: PayloadRulesDep) -> AuditService:
    return AuditService(session, rules)


AuditServiceDep = Annotated[AuditService, Depends(get_audit_service)]
