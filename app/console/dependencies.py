"""Services for the signed-in console user's tenant, read-only, as the API builds them."""

from typing import Annotated

from fastapi import Depends, Request

from app.actions.service import ActionService
from app.actions.stats_service import StatsService
from app.audits.service import AuditService
from app.console.auth import ConsoleTenant
from app.core.auth import ReadSessionDep


async def console_actions(
    request: Request, tenant: ConsoleTenant, session: ReadSessionDep
) -> ActionService:
    state = request.app.state
    return ActionService(session, tenant.tenant_id, state.settings, state.redactor)


async def console_stats(tenant: ConsoleTenant, session: ReadSessionDep) -> StatsService:
    return StatsService(session, tenant.tenant_id)


async def console_audits(request: Request, session: ReadSessionDep) -> AuditService:
    state = request.app.state
    return AuditService(session, state.redactor, state.settings.max_json_depth)


Actions = Annotated[ActionService, Depends(console_actions)]
Stats = Annotated[StatsService, Depends(console_stats)]
Audits = Annotated[AuditService, Depends(console_audits)]
