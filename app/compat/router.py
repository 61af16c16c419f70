"""The in-process action log's routes, `/action-logs/*`, scoped to the tenant of the API key.

The responses keep that log's shapes (`{"actions": [...]}`, `{"stats": {...}}`,
`{"message": ...}`), so its dashboards and scripts work by pointing them here and adding a
key. `clear` needs the `admin` scope: it deletes data.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from app.actions.dependencies import ReadActions
from app.actions.schemas import fits
from app.compat.schemas import ActionLogStats, Cleared, LoggedActions
from app.compat.service import ActionLogsCompat, clear
from app.core.auth import AdminTenant, ReadSessionDep, ReadTenant
from app.core.errors import Forbidden, Unauthorized, Unprocessable, error_responses
from app.core.inputs import Text
from app.retention.state import retention_state
from app.stats.service import StatsService

router = APIRouter(
    prefix="/action-logs",
    tags=["action-logs (in-process log compatible)"],
    responses=error_responses(Unauthorized, Forbidden, Unprocessable),
)


async def compat_service(
    actions: ReadActions, tenant: ReadTenant, session: ReadSessionDep
) -> ActionLogsCompat:
    return ActionLogsCompat(actions, StatsService(session, tenant.tenant_id))


Compat = Annotated[ActionLogsCompat, Depends(compat_service)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Most actions to return (1-1000)")]


@router.get("/recent", response_model=LoggedActions)
async def recent_actions(compat: Compat, limit: Limit = 100) -> LoggedActions:
    """The latest actions, newest first."""
    return await compat.recent(limit)


@router.get("/failed", response_model=LoggedActions)
async def failed_actions(compat: Compat, limit: Limit = 50) -> LoggedActions:
    """The latest failures and timeouts, newest first."""
    return await compat.failed(limit)


@router.get("/service/{service}", response_model=LoggedActions)
async def service_actions(
    compat: Compat,
    service: Annotated[Text, fits("service", 1), Path(description="e.g. CaseService")],
    limit: Limit = 100,
) -> LoggedActions:
    """The latest actions of one service, newest first."""
    return await compat.of_service(service, limit)


@router.get("/stats", response_model=ActionLogStats)
async def action_log_stats(compat: Compat) -> ActionLogStats:
    """Totals: `total`, `failed` (failure and timeout) and `byService`."""
    return await compat.summary()


@router.post("/clear", response_model=Cleared)
async def clear_action_logs(request: Request, tenant: AdminTenant) -> Cleared:
    """Delete the tenant's action logs (`admin` scope), archived first; audited, rollups kept."""
    return await clear(retention_state(request.app).pruner, tenant.tenant_id, tenant.actor)
