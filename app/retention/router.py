"""Retention over HTTP: a tenant's own policy (`admin` scope) and the archive listings.

The operator sets any tenant's policy with `PATCH /api/v1/admin/tenants/{id}`; a tenant sets
its own here. Both go through TenantService, so every change is in the tenant's audit trail.
"""

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from app.core.auth import AdminTenant, Operator, OperatorReadSessionDep, ReadSessionDep, SessionDep
from app.core.deps import PayloadRulesDep
from app.core.errors import Forbidden, NotFound, Unauthorized, Unprocessable, error_responses
from app.core.inputs import TIME_HELP, Offset, QueryTime
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
