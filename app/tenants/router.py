"""Tenant and key management: the operator's admin API and a tenant's own key management."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, status

from app.core.auth import AdminTenant, Operator, SessionDep
from app.core.deps import PayloadRulesDep
from app.core.errors import Conflict, Forbidden, NotFound, Unauthorized, error_responses
from app.core.inputs import Offset, Text
from app.tenants.models import Tenant
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
keys_router = APIRouter(
    prefix="/api/v1/keys", tags=["keys"], responses=error_responses(Unauthorized, Forbidden)
)
KeyId = Annotated[UUID, Path(description="The API key's id")]


async def operator_service(
    session: SessionDep, actor: Operator, rules: PayloadRulesDep
) -> TenantService:
    """Tenant management as the operator (admin token)."""
    return TenantService(session, actor, rules)


async def own_service(
    session: SessionDep, tenant: AdminTenant, rules: PayloadRulesDep
) -> TenantService:
    """Key management by a tenant itself (`admin` scope), as its key's actor."""
    return TenantService(session, tenant.actor, rules)


OperatorService = Annotated[TenantService, Depends(operator_service)]


async def operator_tenant(
    tenant_id: Annotated[Text, Path(max_length=100, description="The tenant's id or its slug")],
    service: OperatorService,
) -> Tenant:
    """The tenant named by id or slug in the path, or 404."""
    return await service.get_by_id_or_slug(tenant_id)


TenantRef = Annotated[Tenant, Depends(operator_tenant)]
OwnService = Annotated[TenantService, Depends(own_service)]


def _created_key(issued: IssuedKey) -> ApiKeyCreated:
    read = ApiKeyRead.model_validate(issued.key)
    return ApiKeyCreated(**read.model_dump(), key=issued.plaintext)


@admin_router.post(
    "/tenants",
    status_code=status.HTTP_201_CREATED,
    response_model=TenantCreated,
    responses=error_responses(Conflict),
)
async def create_tenant(body: TenantCreate, service: OperatorService) -> TenantCreated:
    """Create a tenant and its first API key (all scopes; the key is shown only here)."""
    tenant, issued = await service.create(body)
    read = TenantRead.model_validate(tenant)
    return TenantCreated(**read.model_dump(), api_key=issued.plaintext, api_key_id=issued.key.id)


@admin_router.get("/tenants", response_model=list[TenantRead])
async def list_tenants(
    service: OperatorService,
    skip: Annotated[Offset, Query(description="Tenants to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size (max 1000)")] = 100,
) -> list[TenantRead]:
    """List tenants, oldest first."""
    tenants = await service.list(skip, limit)
    return [TenantRead.model_validate(t) for t in tenants]


@admin_router.get("/tenants/{tenant_id}", response_model=TenantRead)
async def get_tenant(tenant: TenantRef, service: OperatorService) -> TenantRead:
    """One tenant."""
    return TenantRead.model_validate(tenant)


@admin_router.patch(
    "/tenants/{tenant_id}", response_model=TenantRead, responses=error_responses(Conflict)
)
async def update_tenant(
    tenant: TenantRef, body: TenantUpdate, service: OperatorService
) -> TenantRead:
    """Change a tenant's name, slug or retention."""
    tenant = await service.update(tenant.id, body)
    return TenantRead.model_validate(tenant)


@admin_router.post(
    "/tenants/{tenant_id}/keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated
)
async def create_tenant_key(
    tenant: TenantRef, body: ApiKeyCreate, service: OperatorService
) -> ApiKeyCreated:
    """Issue an API key for a tenant (the full key is shown only here)."""
    return _created_key(await service.issue_key(tenant.id, body))


@admin_router.get("/tenants/{tenant_id}/keys", response_model=list[ApiKeyRead])
async def list_tenant_keys(tenant: TenantRef, service: OperatorService) -> list[ApiKeyRead]:
    """A tenant's keys, without secrets."""
    return [ApiKeyRead.model_validate(k) for k in await service.list_keys(tenant.id)]


@admin_router.delete("/tenants/{tenant_id}/keys/{key_id}", response_model=ApiKeyRead)
async def revoke_tenant_key(
    tenant: TenantRef, key_id: KeyId, service: OperatorService
) -> ApiKeyRead:
    """Revoke a key; it stops working at once."""
    key = await service.revoke_key(tenant.id, key_id)
    return ApiKeyRead.model_validate(key)


@keys_router.get("", response_model=list[ApiKeyRead], responses=error_responses(Unauthorized))
async def list_own_keys(tenant: AdminTenant, service: OwnService) -> list[ApiKeyRead]:
    """The calling tenant's keys (`admin` scope), without secrets."""
    keys = await service.list_keys(tenant.tenant_id)
    return [ApiKeyRead.model_validate(k) for k in keys]


@keys_router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_own_key(
    body: ApiKeyCreate, tenant: AdminTenant, service: OwnService
) -> ApiKeyCreated:
    """Issue a key for the calling tenant (`admin` scope); the full key is shown only here."""
    issued = await service.issue_key(tenant.tenant_id, body)
    return _created_key(issued)


@keys_router.delete("/{key_id}", response_model=ApiKeyRead, responses=error_responses(NotFound))
async def revoke_own_key(key_id: KeyId, tenant: AdminTenant, service: OwnService) -> ApiKeyRead:
    """Revoke one of the calling tenant's keys (`admin` scope); another tenant's key is 404."""
    key = await service.revoke_key(tenant.tenant_id, key_id)
    return ApiKeyRead.model_validate(key)
