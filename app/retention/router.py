"""Retention over HTTP: a tenant's own policy (`admin` scope), the archive listings, and the
records of an archive file read back.

The operator sets any tenant's policy with `PATCH /api/v1/admin/tenants/{id}`; a tenant sets
its own here. Both go through TenantService, so every change is in the tenant's audit trail.
"""

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from app.core.auth import AdminTenant, Operator, OperatorReadSessionDep, ReadSessionDep, SessionDep
from app.core.deps import PayloadRulesDep
from app.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unprocessable,
    error_responses,
)
from app.core.inputs import TIME_HELP, Offset, QueryTime
from app.core.pagination import PAGED, set_next_page
from app.core.state import core_state
from app.retention.read import archive_page
from app.retention.schemas import ArchiveRead
from app.retention.service import archives
from app.tenants.schemas import RetentionPolicy, TenantUpdate
from app.tenants.service import TenantService

router = APIRouter(tags=["retention"])

KindParam = Annotated[Literal["actions", "audits"] | None, Query(description="actions or audits")]
Skip = Annotated[Offset, Query(description="Files to skip")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (max 1000)")]
Since = Annotated[
    QueryTime | None,
    Query(description=f"Files with rows at or after this time: {TIME_HELP}"),
]


async def own_service(
    session: SessionDep, tenant: AdminTenant, rules: PayloadRulesDep
) -> TenantService:
    return TenantService(session, tenant.actor, rules)


OwnService = Annotated[TenantService, Depends(own_service)]


@router.get(
    "/api/v1/retention",
    response_model=RetentionPolicy,
    responses=error_responses(Unauthorized, Forbidden),
)
async def get_policy(tenant: AdminTenant, service: OwnService) -> RetentionPolicy:
    """The calling tenant's retention policy (`admin` scope)."""
    return RetentionPolicy.model_validate(await service.get(tenant.tenant_id))


@router.patch(
    "/api/v1/retention",
    response_model=RetentionPolicy,
    responses=error_responses(Unauthorized, Forbidden, Unprocessable),
)
async def set_policy(
    body: RetentionPolicy, tenant: AdminTenant, service: OwnService
) -> RetentionPolicy:
    """Change the calling tenant's retention (`admin` scope; null keeps forever); audited."""
    changes = TenantUpdate.model_validate(body.model_dump(exclude_unset=True))
    return RetentionPolicy.model_validate(await service.update(tenant.tenant_id, changes))


@router.get(
    "/api/v1/retention/archives",
    response_model=list[ArchiveRead],
    responses=error_responses(Unauthorized, Forbidden),
)
async def own_archives(
    tenant: AdminTenant,
    session: ReadSessionDep,
    kind: KindParam = None,
    since: Since = None,
    skip: Skip = 0,
    limit: Limit = 100,
) -> list[ArchiveRead]:
    """The calling tenant's archive files (`admin` scope), oldest rows first."""
    return await archives(session, tenant.tenant_id, kind, since, skip, limit)


@router.get(
    "/api/v1/retention/archives/{archive_id}/records",
    response_model=list[dict[str, Any]],
    responses={**PAGED, **error_responses(BadRequest, Unauthorized, Forbidden, NotFound, Conflict)},
)
async def archive_records(
    request: Request,
    response: Response,
    tenant: AdminTenant,
    session: SessionDep,
    archive_id: Annotated[UUID, Path(description="The archive's id, as listed")],
    limit: Limit = 100,
    cursor: Annotated[
        str | None, Query(max_length=512, description="The `X-Next-Cursor` of the previous page")
    ] = None,
) -> list[dict[str, Any]]:
    """The records of one of the tenant's archive files, in file order, as readers see them
    (`admin` scope): every archived column, personal fields opened, or `"[ERASED]"`."""
    archive_dir = core_state(request.app).settings.archive_dir
    rows, next_cursor = await archive_page(
        session, archive_dir, tenant.tenant_id, archive_id, cursor, limit
    )
    set_next_page(request, response, next_cursor)
    return rows


@router.get(
    "/api/v1/admin/archives",
    response_model=list[ArchiveRead],
    tags=["admin"],
    responses=error_responses(Unauthorized, NotFound),
)
async def all_archives(
    _: Operator,
    session: OperatorReadSessionDep,
    tenant_id: Annotated[UUID | None, Query(description="One tenant's files")] = None,
    kind: KindParam = None,
    since: Since = None,
    skip: Skip = 0,
    limit: Limit = 100,
) -> list[ArchiveRead]:
    """Archive files of every tenant (or one), by tenant, kind and time."""
    return await archives(session, tenant_id, kind, since, skip, limit)
