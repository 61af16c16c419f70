"""HTTP routes of destinations (`admin` scope): where the tenant's records are delivered.

Another tenant's destination answers 404, as a missing one does.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request, Response, status

from app.core.auth import AdminTenant, SessionDep
from app.core.errors import Forbidden, NotFound, Unauthorized, Unprocessable, error_responses
from app.destinations.schemas import (
    DestinationCreate,
    DestinationCreated,
    DestinationRead,
    DestinationUpdate,
    TestResult,
)
from app.destinations.service import DestinationService

DestinationId = Annotated[UUID, Path(description="The destination's id")]
router = APIRouter(
    prefix="/api/v1/destinations",
    tags=["destinations"],
    responses=error_responses(Unauthorized, Forbidden),
)
ONE = error_responses(NotFound)
WRITE = error_responses(NotFound, Unprocessable)


async def admin_service(
    request: Request, tenant: AdminTenant, session: SessionDep
) -> DestinationService:
    state = request.app.state
    settings = state.settings
    return DestinationService(
        session,
        tenant.tenant_id,
        tenant.actor,
        state.payload_rules,
        await state.destination_keys.get(),
        settings.webhook_allow_private,
        settings.destination_timeout_seconds,
    )


Admin = Annotated[DestinationService, Depends(admin_service)]


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=DestinationCreated, responses=WRITE
)
async def create_destination(body: DestinationCreate, service: Admin) -> DestinationCreated:
    """Deliver the tenant's records from now on to a destination (http, splunk_hec, datadog,
    syslog, s3); an http destination's generated signing secret is shown only this once."""
    return await service.create(body)


@router.get("", response_model=list[DestinationRead])
async def list_destinations(service: Admin) -> list[DestinationRead]:
    """The tenant's destinations with their state, position and lag (secrets masked)."""
    return await service.all()


@router.get("/{destination_id}", response_model=DestinationRead, responses=ONE)
async def get_destination(destination_id: DestinationId, service: Admin) -> DestinationRead:
    """One destination with its state, position and lag (secrets masked)."""
    return await service.read(destination_id)


@router.patch("/{destination_id}", response_model=DestinationRead, responses=WRITE)
async def update_destination(
    destination_id: DestinationId, body: DestinationUpdate, service: Admin
) -> DestinationRead:
    """Change a destination's name, config, kinds or filters, or pause / resume it."""
    return await service.update(destination_id, body)


@router.delete("/{destination_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ONE)
async def delete_destination(destination_id: DestinationId, service: Admin) -> Response:
    """Stop delivering to a destination and forget it."""
    await service.delete(destination_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{destination_id}/test", response_model=TestResult, responses=ONE)
async def test_destination(destination_id: DestinationId, service: Admin) -> TestResult:
    """Send one test record (`kind` "test", `stream_id` 0) now; the receiver's answer."""
    return await service.test(destination_id)
