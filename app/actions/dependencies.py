"""Dependencies of the action routes: recorders and services for the caller's tenant, and
loaded records (the caller's action or 404)."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.actions.models import ActionLog
from app.actions.recorder import Recorder
from app.actions.service import ActionService
from app.core.auth import ReadSessionDep, ReadTenant, SessionDep, WriteTenant
from app.core.idempotency import IdempotencyHeader


def recorder_for(state: Any, tenant_id: UUID) -> Recorder:
    """The recorder of a tenant over the application's writer (routes and ingest lane)."""
    return Recorder(tenant_id, state.row_builder, state.writer)


def service_for(state: Any, session: AsyncSession, tenant_id: UUID) -> ActionService:
    return ActionService(
        session, tenant_id, state.row_builder, state.settings.idempotency_ttl_hours
    )


async def recording(request: Request, tenant: WriteTenant) -> Recorder:
    return recorder_for(request.app.state, tenant.tenant_id)


async def reading_service(
    request: Request, tenant: ReadTenant, session: ReadSessionDep
) -> ActionService:
    return service_for(request.app.state, session, tenant.tenant_id)


async def writing_service(
    request: Request, tenant: WriteTenant, session: SessionDep
) -> ActionService:
    return service_for(request.app.state, session, tenant.tenant_id)


RecorderDep = Annotated[Recorder, Depends(recording)]
ReadActions = Annotated[ActionService, Depends(reading_service)]
WriteActions = Annotated[ActionService, Depends(writing_service)]


ActionId = Annotated[UUID, Path(description="The action's id")]


async def valid_action(action_id: ActionId, service: ReadActions) -> ActionLog:
    """The caller's action `action_id`, or 404 (another tenant's id is not found either)."""
    return await service.get(action_id)


async def locked_action(action_id: ActionId, service: WriteActions) -> ActionLog:
    """The caller's action, locked until the request commits, so concurrent changes queue."""
    return await service.get(action_id, for_update=True)


ValidAction = Annotated[ActionLog, Depends(valid_action)]
LockedAction = Annotated[ActionLog, Depends(locked_action)]

IdempotencyKey = IdempotencyHeader


async def get_read_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.read_sessionmaker
    return sessionmaker


ReadSessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_read_sessionmaker)]
