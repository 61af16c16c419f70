"""Dependencies of the action routes: services for the caller's tenant, loaded records, filters."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.actions.filters import ActionFilter
from app.actions.models import ActionLog
from app.actions.payloads import invalid
from app.actions.schemas import Text, UtcDatetime, fits
from app.actions.service import ActionService
from app.actions.statuses import StatusIn
from app.core.auth import ReadSessionDep, ReadTenant, SessionDep, WriteTenant


async def reading_service(
    request: Request, tenant: ReadTenant, session: ReadSessionDep
) -> ActionService:
    state = request.app.state
    return ActionService(session, tenant.tenant_id, state.settings, state.redactor)


async def writing_service(
    request: Request, tenant: WriteTenant, session: SessionDep
) -> ActionService:
    state = request.app.state
    return ActionService(
        session, tenant.tenant_id, state.settings, state.redactor, writer=state.writer
    )


ReadActions = Annotated[ActionService, Depends(reading_service)]
WriteActions = Annotated[ActionService, Depends(writing_service)]


async def valid_action(action_id: UUID, service: ReadActions) -> ActionLog:
    """The caller's action `action_id`, or 404 (another tenant's id is not found either)."""
    return await service.get(action_id)


async def locked_action(action_id: UUID, service: WriteActions) -> ActionLog:
    """The caller's action, locked until the request commits, so concurrent changes queue."""
    return await service.get(action_id, for_update=True)


ValidAction = Annotated[ActionLog, Depends(valid_action)]
LockedAction = Annotated[ActionLog, Depends(locked_action)]

IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        description=(
            "Makes retries safe: a retry returns the first response (with "
            "`Idempotent-Replayed: true`) and stores nothing new; another body is a 409"
        ),
    ),
]


async def get_read_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.read_sessionmaker  # type: ignore[no-any-return]


ReadSessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_read_sessionmaker)]

_REPEAT = "Repeat the parameter to match any of several values"


async def action_filter(
    action_type: Annotated[
        list[Annotated[Text, fits("action_type")]] | None, Query(description=_REPEAT)
    ] = None,
    status: Annotated[
        list[StatusIn] | None, Query(description=f"{_REPEAT}; aliases accepted")
    ] = None,
    provider_name: Annotated[
        list[Annotated[Text, fits("provider_name")]] | None, Query(description=_REPEAT)
    ] = None,
    service: Annotated[Text, fits("service")] | None = None,
    source: Annotated[Text, fits("source")] | None = None,
    user_id: Annotated[Text, fits("user_id")] | None = None,
    session_id: Annotated[Text, fits("session_id")] | None = None,
    correlation_id: Annotated[Text, fits("correlation_id")] | None = None,
    parent_id: UUID | None = None,
    since: Annotated[
        UtcDatetime | None, Query(description="Created at or after (ISO 8601; UTC if no zone)")
    ] = None,
    until: Annotated[UtcDatetime | None, Query(description="Created before (exclusive)")] = None,
    min_duration_ms: Annotated[int | None, Query(ge=0)] = None,
    max_duration_ms: Annotated[int | None, Query(ge=0)] = None,
    q: Annotated[
        Text | None,
        Query(min_length=1, max_length=255, description="Text in action_name or error_message"),
    ] = None,
) -> ActionFilter:
    _check_range(("query", "since"), since, until, "since must not be after until")
    _check_range(
        ("query", "min_duration_ms"),
        min_duration_ms,
        max_duration_ms,
        "min_duration_ms must not exceed max_duration_ms",
    )
    return ActionFilter(
        action_types=tuple(action_type or ()),
        statuses=tuple(status or ()),
        providers=tuple(provider_name or ()),
        service=service,
        source=source,
        user_id=user_id,
        session_id=session_id,
        correlation_id=correlation_id,
        parent_id=parent_id,
        since=since,
        until=until,
        min_duration_ms=min_duration_ms,
        max_duration_ms=max_duration_ms,
        q=q,
    )


def _check_range(
    loc: tuple[str, str],
    low: datetime | int | None,
    high: datetime | int | None,
    message: str,
) -> None:
    if low is not None and high is not None and low > high:  # type: ignore[operator]
        raise invalid(loc, message)


Filters = Annotated[ActionFilter, Depends(action_filter)]
