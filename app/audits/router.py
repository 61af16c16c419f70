"""The audit-log API: record a change (or a batch), list and read rows, a resource's trail,
verify the chain.

Audit rows are append-only: no route changes or deletes one. Recording goes through the worker's
writer (group commit, app/core/writer.py) unless the request carries an `Idempotency-Key`,
which commits in the request's session with its key (app/audits/service.py `record_once`).
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response, status

from app.audits.dependencies import AuditRecorderDep, AuditServiceDep
from app.audits.recorder import AuditRecorder, PreparedEvents
from app.audits.schemas import (
    AuditBatch,
    AuditBatchCreated,
    AuditCreate,
    AuditFilters,
    AuditRead,
    ChainVerification,
    NotRecorded,
    PublicKeys,
    ResourceState,
)
from app.audits.service import AuditService, published_keys
from app.audits.state import audits_state
from app.core.auth import ReadSessionDep, ReadTenant
from app.core.db import utcnow
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
from app.core.idempotency import IdempotencyHeader
from app.core.inputs import TIME_HELP, Offset, QueryTime, Text
from app.core.pagination import PAGED, set_next_page
from app.core.state import core_state

router = APIRouter(
    prefix="/api/v1/logs/audits",
    tags=["audits"],
    responses=error_responses(Unauthorized, Forbidden),
)


Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (max 1000)")]
Skip = Offset
CursorParam = Annotated[
    str | None, Query(description="The `X-Next-Cursor` of the previous page", max_length=512)
]


WRITE_ERRORS = error_responses(Conflict, PayloadTooLarge, Unprocessable)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AuditRead,
    responses={
        200: {"model": NotRecorded, "description": "An update that changed nothing"},
        **WRITE_ERRORS,
    },
)
async def record_audit(
    request: Request,
    body: AuditCreate,
    recorder: AuditRecorderDep,
    service: AuditServiceDep,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Record a change to a resource (`write` scope); an update with before == after is 200."""
    return await _record(request, recorder.prepare(body), recorder, service, idempotency_key)


@router.post(
    "/batch",
    status_code=status.HTTP_201_CREATED,
    response_model=AuditBatchCreated,
    responses={
        200: {"model": AuditBatchCreated, "description": "Every event was an update that "
              "changed nothing: nothing was recorded"},
        **WRITE_ERRORS,
    },
)  # fmt: skip
async def record_audits(
    request: Request,
    body: AuditBatch,
    recorder: AuditRecorderDep,
    service: AuditServiceDep,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Record up to 1000 changes in order (`write` scope): every event is stored, or none.

    A bad event is a 422 naming its index (`["body", "events", i, ...]`) and nothing is stored.
    An update whose `before` equals its `after` changed nothing: it is skipped (its index is
    listed in `skipped`), as a single POST answers it with 200 and records nothing.
    """
    return await _record(request, recorder.prepare_batch(body), recorder, service, idempotency_key)


async def _record(
    request: Request,
    prepared: PreparedEvents,
    recorder: AuditRecorder,
    service: AuditService,
    idempotency_key: str | None,
) -> Response:
    if idempotency_key is None:
        return (await recorder.write(prepared)).response()
    ttl_hours = core_state(request.app).settings.idempotency_ttl_hours
    written = await service.record_once(recorder.tenant_id, idempotency_key, prepared, ttl_hours)
    return written.response()


@router.get(
    "",
    response_model=list[AuditRead],
    responses={**PAGED, **error_responses(BadRequest, Unprocessable)},
)
async def list_audits(
    request: Request,
    response: Response,
    tenant: ReadTenant,
    service: AuditServiceDep,
    action: Annotated[
        Text | None, Query(max_length=100, examples=["update"], description="The verb, exact")
    ] = None,
    resource_type: Annotated[
        Text | None, Query(max_length=100, description="Resource type, exact")
    ] = None,
    resource_id: Annotated[
        Text | None, Query(max_length=255, description="Resource id, exact")
    ] = None,
    user_id: Annotated[Text | None, Query(max_length=255, description="Actor, exact")] = None,
    correlation_id: Annotated[
        Text | None, Query(max_length=255, description="Correlation id, exact")
    ] = None,
    since: Annotated[
        QueryTime | None, Query(description=f"From this time (inclusive): {TIME_HELP}")
    ] = None,
    until: Annotated[
        QueryTime | None, Query(description=f"Before this time (exclusive): {TIME_HELP}")
    ] = None,
    skip: Skip = 0,
    limit: Limit = 100,
    cursor: CursorParam = None,
) -> list[AuditRead]:
    """List audit rows, newest first; the next page's cursor is in `X-Next-Cursor` and `Link`."""
    filters = AuditFilters(
        action, resource_type, resource_id, user_id, since, until, correlation_id
    )
    rows, next_cursor = await service.list(tenant.tenant_id, filters, cursor, skip, limit)
    set_next_page(request, response, next_cursor)
    return [AuditRead.model_validate(row) for row in rows]


@router.get("/verify", response_model=ChainVerification)
async def verify_chain(tenant: ReadTenant, service: AuditServiceDep) -> ChainVerification:
    """Recompute the tenant's hash chain and name the first row that does not match."""
    return await service.verify(tenant.tenant_id)


@router.get("/public-key", response_model=PublicKeys)
async def public_key(request: Request, tenant: ReadTenant, session: ReadSessionDep) -> PublicKeys:
    """The Ed25519 keys that sign audit checkpoints (the current one first)."""
    return await published_keys(session, await audits_state(request.app).signer.get())


@router.get(
    "/resource/{resource_type}/{resource_id:path}/state",
    response_model=ResourceState,
    responses=error_responses(NotFound, Unprocessable),
)
async def resource_state(
    tenant: ReadTenant,
    service: AuditServiceDep,
    resource_type: Annotated[Text, Path(max_length=100, description="e.g. contact")],
    resource_id: Annotated[Text, Path(max_length=255, description="e.g. 4812")],
    at: Annotated[
        QueryTime | None,
        Query(description=f"The time ({TIME_HELP}); default: now"),
    ] = None,
) -> ResourceState:
    """A resource's fields at time `at`, rebuilt from its trail, and the event they rest on."""
    moment = at or utcnow()
    return await service.state_at(tenant.tenant_id, resource_type, resource_id, moment)


@router.get(
    "/resource/{resource_type}/{resource_id:path}",
    response_model=list[AuditRead],
    responses={**PAGED, **error_responses(BadRequest, Unprocessable)},
)
async def resource_trail(
    request: Request,
    response: Response,
    tenant: ReadTenant,
    service: AuditServiceDep,
    resource_type: Annotated[Text, Path(max_length=100, description="e.g. contact")],
    resource_id: Annotated[Text, Path(max_length=255, description="e.g. 4812")],
    skip: Skip = 0,
    limit: Limit = 100,
    cursor: CursorParam = None,
) -> list[AuditRead]:
    """A resource's audit trail, oldest first, in chain order; paginated like the listing."""
    rows, next_cursor = await service.trail(
        tenant.tenant_id, resource_type, resource_id, cursor, skip, limit
    )
    set_next_page(request, response, next_cursor)
    return [AuditRead.model_validate(row) for row in rows]


@router.get("/{audit_id}", response_model=AuditRead, responses=error_responses(NotFound))
async def get_audit(
    audit_id: Annotated[UUID, Path(description="The audit row's id")],
    tenant: ReadTenant,
    service: AuditServiceDep,
) -> AuditRead:
    """One audit row; another tenant's row is 404, as a missing one is."""
    return AuditRead.model_validate(await service.get(tenant.tenant_id, audit_id))
