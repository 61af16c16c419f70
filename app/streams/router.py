"""Live events over Server-Sent Events and WebSocket (`read` scope).

SSE (`GET /api/v1/logs/stream`): `event: action` or `event: audit`, `id:` the event's number
in the tenant's stream, `data:` the record as the list routes return it. The first message
advises `retry:`; a comment every STREAM_KEEPALIVE_SECONDS keeps proxies from closing an idle
stream. Errors before the stream starts are ordinary JSON answers (401, 403, 410, 422, 429).

WebSocket (`GET /api/v1/logs/ws`): the same events as JSON text messages
`{"type": "event", "id": "12", "event": "action", "data": {...}}`. Browsers cannot set
headers on a WebSocket and a key in the URL ends up in logs, so the key is sent as the first
message, `{"type": "auth", "api_key": "alk_..."}` (optionally with `"last_event_id"`), within
10 seconds; clients that can set headers may send `X-API-Key` or `Authorization: Bearer`
instead. Filters are query parameters, as for SSE. The server answers
`{"type": "ready", "last_event_id": "N"}` and then events, with `{"type": "keepalive"}` when
idle. Errors are a message `{"type": "error", "status": 4xx, "detail": ...}` followed by a close
with code 4000 + status (4401, 4403, 4410, 4422, 4429); a client too slow to keep up is closed
with 4008 and resumes with its last event id.
"""

import asyncio
import contextlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, WebSocket
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from app.core.auth import Actor, ReadTenant, TenantContext, check_scope, presented_key
from app.core.errors import (
    DATABASE_UNAVAILABLE,
    Forbidden,
    ServiceError,
    Unauthorized,
    Unprocessable,
    error_responses,
)
from app.core.state import core_state
from app.streams.service import (
    EventsGone,
    SlowConsumer,
    StreamCursor,
    StreamQuery,
    StreamService,
    TooManyStreams,
)
from app.streams.sse import SEND_TIMEOUT, sse_response, stream_service
from app.streams.state import StreamsState, streams_state

router = APIRouter(prefix="/api/v1/logs", tags=["stream"])
AUTH_TIMEOUT = 10.0


def _service(state: StreamsState) -> StreamService:
    return stream_service(state)


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The event stream"},
        **error_responses(Unauthorized, Forbidden, EventsGone, Unprocessable, TooManyStreams),
    },
)
async def stream(
    request: Request,
    tenant: ReadTenant,
    query: Annotated[StreamQuery, Query()],
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", max_length=20, description="Resume after this event id"),
    ] = None,
) -> EventSourceResponse:
    """Live actions and audit rows (SSE); resume with Last-Event-ID, exactly once, in order."""
    return await sse_response(streams_state(request.app), tenant, query, last_event_id)


# WebSocket


class _Refused(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


async def _first_message(websocket: WebSocket) -> dict[str, Any]:
    try:
        text = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT)
        message = json.loads(text)
    except TimeoutError:
        raise _Refused(401, 'send {"type": "auth", "api_key": ...} first') from None
    except (ValueError, KeyError):
        raise _Refused(422, 'the first message must be JSON: {"type": "auth", ...}') from None
    if not isinstance(message, dict) or message.get("type") != "auth":
        raise _Refused(401, 'the first message must be {"type": "auth", "api_key": ...}')
    return message


async def _authenticate(websocket: WebSocket) -> tuple[TenantContext, str | None]:
    presented, resume = presented_key(websocket.headers), None
    if presented is None:
        message = await _first_message(websocket)
        presented = message.get("api_key")
        resume = message.get("last_event_id")
        if not isinstance(presented, str):
            raise _Refused(401, "api_key must be a string")
        if resume is not None and not isinstance(resume, str | int):
            raise _Refused(422, "last_event_id must be an event id")
    key = await core_state(websocket.app).keys.resolve(presented)
    client = websocket.client.host if websocket.client else None
    actor = Actor(f"key:{key.prefix}", client, websocket.headers.get("user-agent"))
    tenant = TenantContext(key.tenant_id, key.id, frozenset(key.scopes), actor)
    return check_scope(tenant, "read"), None if resume is None else str(resume)


def _query(websocket: WebSocket) -> StreamQuery:
    params = websocket.query_params
    lists = ("action_type", "status", "provider_name")
    data: dict[str, Any] = {name: params.getlist(name) for name in lists if name in params}
    data.update({k: v for k, v in params.items() if k not in lists})
    try:
        return StreamQuery.model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": ["query", *e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        raise _Refused(422, errors) from None


async def _pump(websocket: WebSocket, cursor: StreamCursor, keepalive: float) -> None:
    await websocket.send_text(json.dumps({"type": "ready", "last_event_id": str(cursor.position)}))
    while True:
        events = await cursor.next(keepalive)
        if not events:
            await websocket.send_text('{"type": "keepalive"}')
        for event in events:
            await asyncio.wait_for(websocket.send_text(event.ws), SEND_TIMEOUT)


async def _until_closed(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()


@router.websocket("/ws")
async def websocket_stream(websocket: WebSocket) -> None:
    """Live actions and audit rows over WebSocket (authenticate with the first message)."""
    await websocket.accept()
    state = streams_state(websocket.app)
    cursor: StreamCursor | None = None
    try:
        query = _query(websocket)
        tenant, resume = await _authenticate(websocket)
        cursor = await _service(state).open(tenant, query, resume)
        pump = asyncio.create_task(
            _pump(websocket, cursor, state.settings.stream_keepalive_seconds)
        )
        closed = asyncio.create_task(_until_closed(websocket))
        done, pending = await asyncio.wait({pump, closed}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()
    except _Refused as exc:
        await _refuse(websocket, exc.status, exc.detail)
    except ServiceError as exc:
        await _refuse(websocket, exc.status_code, exc.detail)
    except DATABASE_UNAVAILABLE:
        await _refuse(websocket, 503, "Database unavailable, retry later")
    except SlowConsumer:
        await _refuse(websocket, 408, "too slow to keep up: reconnect with last_event_id", 4008)
    except (WebSocketDisconnect, TimeoutError):
        pass
    finally:
        if cursor is not None:
            cursor.close()


async def _refuse(websocket: WebSocket, status: int, detail: Any, code: int | None = None) -> None:
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps({"type": "error", "status": status, "detail": detail}))
        await websocket.close(code=code or 4000 + status, reason=str(detail)[:120])
