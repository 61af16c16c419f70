"""Services for the signed-in console user's tenant, read-only, as the API builds them."""

from typing import Annotated

from fastapi import Depends, Request

from app.actions.dependencies import service_for
from app.actions.service import ActionService
from app.actions.state import actions_state
from app.audits.service import AuditService
from app.console.auth import ConsoleTenant
from app.core.auth import ReadSessionDep
from app.core.state import core_state
from app.stats.service import StatsService
from app.timeline.service import TimelineService


async def console_actions(
    request: Request, tenant: ConsoleTenant, session: ReadSessionDep
) -> ActionService:
    return service_for(actions_state(request.app), session, tenant.tenant_id)


async def console_stats(tenant: ConsoleTenant, session: ReadSessionDep) -> StatsService:
    return StatsService(session, tenant.tenant_id)


async def console_audits(request: Request, session: ReadSessionDep) -> AuditService:
    return AuditService(session, core_state(request.app).payload_rules)


async def console_timeline(
    request: Request, tenant: ConsoleTenant, session: ReadSessionDep
) -> TimelineService:
    state = actions_state(request.app)
    actions = service_for(state, session, tenant.tenant_id)
    audits = AuditService(session, state.payload_rules)
    return TimelineService(actions, audits, tenant.tenant_id)


Actions = Annotated[ActionService, Depends(console_actions)]
Stats = Annotated[StatsService, Depends(console_stats)]
Audits = Annotated[AuditService, Depends(console_audits)]
Timelines = Annotated[TimelineService, Depends(console_timeline)]
