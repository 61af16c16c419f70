"""The operator's offboarding route: `DELETE /api/v1/admin/tenants/{tenant_id}`."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from app.core.auth import Operator
from app.core.db import utcnow
from app.core.errors import NotFound, Unauthorized, error_responses
from app.core.inputs import Text
from app.core.state import core_state
from app.offboarding.service import offboard_tenant

router = APIRouter(
    prefix="/api/v1/admin",
    tags=["admin"],
    responses=error_responses(Unauthorized, NotFound),
)


class TenantOffboarded(BaseModel):
    tenant_id: UUID
    keys_revoked: int
    actions_deleted: int
    audits_deleted: int


@router.delete("/tenants/{tenant_id}", response_model=TenantOffboarded)
async def delete_tenant(
    request: Request,
    tenant_id: Annotated[Text, Path(max_length=100, description="The tenant's id or its slug")],
    operator: Operator,
) -> TenantOffboarded:
    """Offboard a tenant: its keys stop working at once, then all its data is deleted."""
    done = await offboard_tenant(
        core_state(request.app).sessionmaker, tenant_id, operator.id or "admin", utcnow
    )
    return TenantOffboarded(**done.__dict__)
