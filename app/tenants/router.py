"""Tenant and key management: the operator's admin API and a tenant's own key management."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status

from app.core.auth import AdminTenant, Operator, SessionDep
from app.core.errors import Conflict, NotFound, Unauthorized, error_responses
from app.tenants.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    TenantCreate,
    TenantCreated,
    TenantRead,
    TenantUpdate,
)
from app.tenants.service import IssuedKey, TenantService

admin_router = APIRouter(
    prefix="/api/v1/admin",
    tags=["admin"],
    responses=error_responses(Unauthorized, NotFound),
)
keys_router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


def _created_key(issued: IssuedKey) -> ApiKeyCreated:
    read = ApiKeyRead.model_validate(issued.key)
    return ApiKeyCreated(**read.model_dump(), key=issued.plaintext)


@admin_router.post(
    "/tenants",
    status_code=status.HTTP_201_CREATED,
    response_model=TenantCreated,
    responses=error_responses(Conflict),
)
async def create_tenant(body: TenantCreate, session: SessionDep, actor: Operator) -> TenantCreated:
    """Create a tenant and its first API key (all scopes; the key is shown only here)."""
    tenant, issued = await TenantService(session, actor).create(body)
    read = TenantRead.model_validate(tenant)
    return TenantCreated(**read.model_dump(), api_key=issued.plaintext, api_key_id=issued.key.id)


@admin_router.get("/tenants", response_model=list[TenantRead])
async def list_tenants(
    session: SessionDep,
    actor: Operator,
    skip: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[TenantRead]:
    """List tenants, oldest first."""
    tenants = await TenantService(session, actor).list(skip, limit)
    return [TenantRead.model_validate(t) for t in tenants]


@admin_router.get("/tenants/{tenant_id}", response_model=TenantRead)
async def get_tenant(tenant_id: UUID, session: SessionDep, actor: Operator) -> TenantRead:
    """One tenant."""
    return TenantRead.model_validate(await TenantService(session, actor).get(tenant_id))


@admin_router.patch(
    "/tenants/{tenant_id}", response_model=TenantRead, responses=error_responses(Conflict)
)
async def update_tenant(
    tenant_id: UUID, body: TenantUpdate, session: SessionDep, actor: Operator
) -> TenantRead:
    """Change a tenant's name, slug or retention."""
    tenant = await TenantService(session, actor).update(tenant_id, body)
    return TenantRead.model_validate(tenant)


@admin_router.post(
    "/tenants/{tenant_id}/keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated
)
async def create_tenant_key(
    tenant_id: UUID, body: ApiKeyCreate, session: SessionDep, actor: Operator
) -> ApiKeyCreated:
    """Issue an API key for a tenant (the full key is shown only here)."""
    service = TenantService(session, actor)
    await service.get(tenant_id)
    return _created_key(await service.issue_key(tenant_id, body))


@admin_router.get("/tenants/{tenant_id}/keys", response_model=list[ApiKeyRead])
async def list_tenant_keys(
    tenant_id: UUID, session: SessionDep, actor: Operator
) -> list[ApiKeyRead]:
    """A tenant's keys, without secrets."""
    service = TenantService(session, actor)
    await service.get(tenant_id)
    return [ApiKeyRead.model_validate(k) for k in await service.list_keys(tenant_id)]


@admin_router.delete("/tenants/{tenant_id}/keys/{key_id}", response_model=ApiKeyRead)
async def revoke_tenant_key(
    tenant_id: UUID, key_id: UUID, session: SessionDep, actor: Operator
) -> ApiKeyRead:
    """Revoke a key; it stops working at once."""
    key = await TenantService(session, actor).revoke_key(tenant_id, key_id)
    return ApiKeyRead.model_validate(key)


@keys_router.get("", response_model=list[ApiKeyRead], responses=error_responses(Unauthorized))
async def list_own_keys(session: SessionDep, tenant: AdminTenant) -> list[ApiKeyRead]:
    """The calling tenant's keys (`admin` scope), without secrets."""
    keys = await TenantService(session, tenant.actor).list_keys(tenant.tenant_id)
    return [ApiKeyRead.model_validate(k) for k in keys]


@keys_router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_own_key(
    body: ApiKeyCreate, session: SessionDep, tenant: AdminTenant
) -> ApiKeyCreated:
    """Issue a key for the calling tenant (`admin` scope); the full key is shown only here."""
    issued = await TenantService(session, tenant.actor).issue_key(tenant.tenant_id, body)
    return _created_key(issued)


@keys_router.delete("/{key_id}", response_model=ApiKeyRead, responses=error_responses(NotFound))
async def revoke_own_key(key_id: UUID, session: SessionDep, tenant: AdminTenant) -> ApiKeyRead:
    """Revoke one of the calling tenant's keys (`admin` scope); another tenant's key is 404."""
    key = await TenantService(session, tenant.actor).revoke_key(tenant.tenant_id, key_id)
    return ApiKeyRead.model_validate(key)
