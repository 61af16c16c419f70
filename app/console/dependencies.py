"""Services for the signed-in console user's tenant, read-only, as the API builds them."""

from typing import Annotated

from fastapi import Depends, Request

from app.actions.dependencies import service_for
from app.actions.service import ActionService
from app.audits.service import AuditService
from app.console.auth import ConsoleTenant
from app.core.auth import ReadSessionDep
from app.stats.service import StatsService
from app.timeline.service import TimelineService


async def console_actions(
    request: Request, tenant: ConsoleTenant, session: ReadSessionDep
) -> ActionService:
    return service_for(request.app.state, session, tenant.tenant_id)


async def console_stats(tenant: ConsoleTenant, session: ReadSessionDep) -> StatsService:
    return StatsService(session, tenant.tenant_id)


async def console_audits(request: Request, session: ReadSessionDep) -> AuditService:
    return AuditService(session, request.app.state.payload_rules)


async def console_timeline(
    request: Request, tenant: ConsoleTenant, session: ReadSessionDep
) -> TimelineService:
    actions = service_for(request.app.state, session, tenant.tenant_id)
    audits = AuditService(session, request.app.state.payload_rules)
    return TimelineService(actions, audits, tenant.tenant_id)


Actions = Annotated[ActionService, Depends(console_actions)]
Stats = Annotated[StatsService, Depends(console_stats)]
Audits = Annotated[AuditService, Depends(console_audits)]
Timelines = Annotated[TimelineService, Depends(console_timeline)]
