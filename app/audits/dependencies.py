"""Dependencies of the audit routes: the recorder (over the worker's writer) and the service;
and the paths the ingest lane serves."""

from functools import partial
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from pydantic import TypeAdapter

from app.audits.recorder import AuditRecorder
from app.audits.schemas import AuditBatch, AuditCreate
from app.audits.service import AuditService
from app.audits.state import AuditsState, audits_state
from app.core.auth import SessionDep, WriteTenant
from app.core.deps import PayloadRulesDep
from app.core.lane import LaneRoute, recording_routes

RECORD_AUDIT = "/api/v1/logs/audits"
RECORD_AUDITS = "/api/v1/logs/audits/batch"


async def get_audit_service(session: SessionDep, rules: PayloadRulesDep) -> AuditService:
    return AuditService(session, rules)


def recorder_for(state: AuditsState, tenant_id: UUID) -> AuditRecorder:
    """The recorder of a tenant over the worker's audit writer (routes and ingest lane)."""
    return AuditRecorder(tenant_id, state.audit_events, state.audit_writer)


def lane_routes(state: AuditsState) -> dict[str, LaneRoute]:
    """The ordinary recording POSTs, served by the ingest lane (app/core/lane.py)."""
    recorders = partial(recorder_for, state)
    return recording_routes(
        RECORD_AUDIT, TypeAdapter(AuditCreate), RECORD_AUDITS, TypeAdapter(AuditBatch), recorders
    )


async def get_audit_recorder(request: Request, tenant: WriteTenant) -> AuditRecorder:
    return recorder_for(audits_state(request.app), tenant.tenant_id)


AuditServiceDep = Annotated[AuditService, Depends(get_audit_service)]
AuditRecorderDep = Annotated[AuditRecorder, Depends(get_audit_recorder)]
