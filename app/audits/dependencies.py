"""Dependencies of the audit routes: the recorder (over the audit writer) and the service."""

from typing import Annotated

from fastapi import Depends, Request

from app.audits.recorder import AuditRecorder
from app.audits.service import AuditService
from app.core.auth import SessionDep, WriteTenant
from app.core.deps import PayloadRulesDep


async def get_audit_service(session: SessionDep, rules: PayloadRulesDep) -> AuditService:
    return AuditService(session, rules)


async def get_audit_recorder(request: Request, tenant: WriteTenant) -> AuditRecorder:
    state = request.app.state
    return AuditRecorder(tenant.tenant_id, state.audit_events, state.audit_writer)


AuditServiceDep = Annotated[AuditService, Depends(get_audit_service)]
AuditRecorderDep = Annotated[AuditRecorder, Depends(get_audit_recorder)]
