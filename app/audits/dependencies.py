"""Dependencies of the audit routes: the recorder (over the audit writer) and the service."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Request

from app.audits.recorder import AuditRecorder
from app.audits.service import AuditService
from app.core.auth import SessionDep, WriteTenant
from app.core.deps import PayloadRulesDep


async def get_audit_service(session: SessionDep, rules: PayloadRulesDep) -> AuditService:
    return AuditService(session, rules)


def recorder_for(state: Any, tenant_id: UUID) -> AuditRecorder:
    """The recorder of a tenant over the application's audit writer (routes and lane)."""
    return AuditRecorder(tenant_id, state.audit_events, state.audit_writer)


async def get_audit_recorder(request: Request, tenant: WriteTenant) -> AuditRecorder:
    return recorder_for(request.app.state, tenant.tenant_id)


AuditServiceDep = Annotated[AuditService, Depends(get_audit_service)]
AuditRecorderDep = Annotated[AuditRecorder, Depends(get_audit_recorder)]
