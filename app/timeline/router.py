"""`GET /api/v1/logs/timeline`: the actions and audit events of one correlation id, in order."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from app.actions.dependencies import service_for
from app.actions.state import actions_state
from app.audits.service import AuditService
from app.core.auth import ReadSessionDep, ReadTenant
from app.core.errors import Forbidden, Unauthorized, Unprocessable, error_responses
from app.core.inputs import Text
from app.core.responses import RowsResponse
from app.timeline.schemas import TimelineEntry
from app.timeline.service import MAX_ENTRIES, TimelineService

router = APIRouter(
    prefix="/api/v1/logs",
    tags=["timeline"],
    responses=error_responses(Unauthorized, Forbidden, Unprocessable),
)


async def timeline_service(
    request: Request, tenant: ReadTenant, session: ReadSessionDep
) -> TimelineService:
    state = actions_state(request.app)
    actions = service_for(state, session, tenant.tenant_id)
    return TimelineService(actions, AuditService(session, state.payload_rules), tenant.tenant_id)


Timelines = Annotated[TimelineService, Depends(timeline_service)]


@router.get("/timeline", response_model=list[TimelineEntry])
async def timeline(
    service: Timelines,
    correlation_id: Annotated[
        Text,
        Query(min_length=1, max_length=255, description="The incident, job or trace id, exact"),
    ],
    limit: Annotated[
        int, Query(ge=1, le=MAX_ENTRIES, description=f"Most entries (max {MAX_ENTRIES})")
    ] = 500,
) -> Response:
    """Actions and audit events sharing `correlation_id`, oldest first, each with its `kind`.

    At most `limit` entries (the oldest); `X-Timeline-Truncated: true` says that more exist.
    """
    found = await service.of(correlation_id, limit)
    headers = {"X-Timeline-Truncated": "true"} if found.truncated else None
    body = [entry.model_dump(mode="json") for entry in found.entries]
    return RowsResponse(body, headers=headers)
