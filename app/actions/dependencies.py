"""Dependencies of the action routes: recorders and services for the caller's tenant, and
loaded records (the caller's action or 404); and the paths the ingest lane serves."""

from functools import partial
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Path, Request
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.actions.models import ActionLog
from app.actions.recorder import Recorder
from app.actions.schemas import ActionBatch, ActionCreate
from app.actions.service import ActionService
from app.actions.state import ActionsState, actions_state
from app.core.auth import ReadSessionDep, ReadTenant, SessionDep, WriteTenant
from app.core.idempotency import IdempotencyHeader
from app.core.lane import LaneRoute, recording_routes

RECORD = "/api/v1/logs/actions"
RECORD_BATCH = "/api/v1/logs/actions/batch"


def recorder_for(state: ActionsState, tenant_id: UUID) -> Recorder:
    """The recorder of a tenant over the worker's writer (routes and ingest lane)."""
    return Recorder(tenant_id, state.row_builder, state.writer, state.action_reads)


def lane_routes(state: ActionsState) -> dict[str, LaneRoute]:
    """The ordinary recording POSTs, served by the ingest lane (app/core/lane.py)."""
    recorders = partial(recorder_for, state)
    return recording_routes(
        RECORD, TypeAdapter(ActionCreate), RECORD_BATCH, TypeAdapter(ActionBatch), recorders
    )


def service_for(state: ActionsState, session: AsyncSession, tenant_id: UUID) -> ActionService:
    return ActionService(
        session, tenant_id, state.row_builder, state.settings.idempotency_ttl_hours
    )


async def recording(request: Request, tenant: WriteTenant) -> Recorder:
    return recorder_for(actions_state(request.app), tenant.tenant_id)


async def reading_service(
    request: Request, tenant: ReadTenant, session: ReadSessionDep
) -> ActionService:
    return service_for(actions_state(request.app), session, tenant.tenant_id)


async def writing_service(
    request: Request, tenant: WriteTenant, session: SessionDep
) -> ActionService:
    return service_for(actions_state(request.app), session, tenant.tenant_id)


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
    return actions_state(request.app).read_sessionmaker


ReadSessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_read_sessionmaker)]
