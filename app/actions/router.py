"""HTTP routes of action logs: record, track, query, export (statistics: app/stats/).

Every route is scoped to the tenant of the API key: `write` records and changes actions,
`read` queries them.
"""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from app.actions.dependencies import (
    IdempotencyKey,
    LockedAction,
    ReadActions,
    ReadSessionmakerDep,
    RecorderDep,
    ValidAction,
    WriteActions,
)
from app.actions.export import ActionExport, ExportFormat
from app.actions.filters import Filters
from app.actions.recorder import PreparedRows, Recorder
from app.actions.schemas import (
    ActionBatch,
    ActionCreate,
    ActionRead,
    ActionSummary,
    ActionUpdate,
    BatchCreated,
    Sort,
    StepCreate,
)
from app.actions.service import ActionService
from app.core.auth import ReadTenant
from app.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unprocessable,
    error_responses,
)
from app.core.inputs import Offset
from app.core.pagination import PAGED, OrderParam, set_next_page
from app.core.responses import RowsResponse

router = APIRouter(
    prefix="/api/v1/logs",
    tags=["actions"],
    responses=error_responses(Unauthorized, Forbidden),
)
WRITE_ERRORS = error_responses(Conflict, PayloadTooLarge, Unprocessable)


@router.post(
    "/actions",
    status_code=status.HTTP_201_CREATED,
    response_model=ActionRead,
    responses=WRITE_ERRORS,
)
async def record_action(
    body: ActionCreate,
    recorder: RecorderDep,
    service: WriteActions,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Record one action; answers the stored record (secrets redacted)."""
    return await record(recorder.prepare(body), recorder, service, idempotency_key)


@router.post(
    "/actions/batch",
    status_code=status.HTTP_201_CREATED,
    response_model=BatchCreated,
    responses=WRITE_ERRORS,
)
async def record_actions(
    body: ActionBatch,
    recorder: RecorderDep,
    service: WriteActions,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Record up to 1000 actions (a JSON array) at once: all are stored, or none."""
    return await record(recorder.prepare_batch(body), recorder, service, idempotency_key)


async def record(
    prepared: PreparedRows, recorder: Recorder, service: ActionService, key: str | None
) -> Response:
    """Write prepared rows as the lane does, or once per `Idempotency-Key`."""
    if key is None:
        return (await recorder.write(prepared)).response()
    return (await service.record_once(prepared, key)).response()


@router.get(
    "/actions",
    response_model=list[ActionSummary],
    responses={**PAGED, **error_responses(BadRequest)},
)
async def list_actions(
    request: Request,
    service: ReadActions,
    filters: Filters,
    skip: Annotated[
        Offset, Query(description="Offset, for compatibility; ignored with a cursor")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size (max 1000)")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=512, description="X-Next-Cursor of the previous page")
    ] = None,
    order: OrderParam = "desc",
    sort: Annotated[
        Sort,
        Query(
            description=(
                "created_at (default), or execution_time_ms: timed actions only, "
                "the slowest first with order=desc"
            )
        ),
    ] = "created_at",
) -> Response:
    """List actions, newest first; the next page's cursor is in X-Next-Cursor and Link."""
    page, next_cursor = await service.page(
        filters, limit=limit, order=order, cursor=cursor, skip=skip, sort=sort
    )
    response = RowsResponse(page)
    set_next_page(request, response, next_cursor)
    return response


@router.get("/actions/failed/recent", response_model=list[ActionSummary])
async def recent_failures(
    service: ReadActions,
    minutes: Annotated[int, Query(ge=1, le=1440, description="How far back (1-1440)")] = 60,
    limit: Annotated[int, Query(ge=1, le=100, description="Most rows (1-100)")] = 50,
) -> Response:
    """Failures and timeouts of the last `minutes`, newest first."""
    return RowsResponse(await service.recent_failures(minutes, limit))


@router.get(
    "/actions/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
async def export_actions(
    tenant: ReadTenant,
    filters: Filters,
    sessionmaker: ReadSessionmakerDep,
    fmt: Annotated[ExportFormat, Query(alias="format", description="csv or ndjson")] = "csv",
    order: OrderParam = "desc",
) -> StreamingResponse:
    """Download every matching action as CSV or NDJSON, streamed (no limit)."""
    export = ActionExport(sessionmaker, tenant.tenant_id, filters, order, fmt)
    disposition = f'attachment; filename="{export.filename}"'
    return StreamingResponse(
        await export.open(),
        media_type=export.media_type,
        headers={"Content-Disposition": disposition},
    )


@router.get("/actions/{action_id}", response_model=ActionRead, responses=error_responses(NotFound))
async def get_action(action: ValidAction) -> ActionRead:
    """One action with its payloads and steps."""
    return ActionRead.model_validate(action)


@router.patch(
    "/actions/{action_id}",
    response_model=ActionRead,
    responses=error_responses(NotFound, Conflict, Unprocessable),
)
async def update_action(
    body: ActionUpdate, action: LockedAction, service: WriteActions
) -> ActionRead:
    """Progress, complete or fail a running action; a finished one answers 409."""
    return await service.update(action, body)


@router.post(
    "/actions/{action_id}/steps",
    status_code=status.HTTP_201_CREATED,
    response_model=ActionRead,
    responses=error_responses(NotFound, Conflict, Unprocessable),
)
async def add_step(body: StepCreate, action: LockedAction, service: WriteActions) -> ActionRead:
    """Append an execution step to a running action; answers the updated record."""
    return await service.add_step(action, body)
