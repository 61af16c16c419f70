"""A tenant's live events as a Server-Sent Events response: opened once, served to the API's
`GET /api/v1/logs/stream` and to the console's live tail alike (each authenticates its own way).
"""

import json
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent

from app.core.auth import TenantContext
from app.streams.service import SlowConsumer, StreamCursor, StreamQuery, StreamService
from app.streams.state import StreamsState

SEND_TIMEOUT = 30.0


def stream_service(state: StreamsState) -> StreamService:
    return StreamService(state.stream_hub, state.settings.stream_max_per_key)


async def _frames(cursor: StreamCursor, retry_ms: int) -> AsyncIterator[ServerSentEvent | bytes]:
    try:
        yield ServerSentEvent(retry=retry_ms, comment=f"stream after event {cursor.position}")
        while True:
            try:
                events = await cursor.next()
            except SlowConsumer:
                detail = "too slow to keep up: reconnect with Last-Event-ID to resume"
                yield ServerSentEvent(event="error", data=json.dumps({"detail": detail}))
                return
            yield b"".join(event.sse for event in events)
    finally:
        cursor.close()


async def sse_response(
    state: StreamsState, tenant: TenantContext, query: StreamQuery, last_event_id: str | None
) -> EventSourceResponse:
    """Open the tenant's stream (errors are raised before anything is sent) and serve it."""
    settings = state.settings
    cursor = await stream_service(state).open(tenant, query, last_event_id)
    return EventSourceResponse(
        _frames(cursor, settings.stream_retry_ms),
        headers={"Cache-Control": "no-cache"},
        ping=settings.stream_keepalive_seconds,
        send_timeout=SEND_TIMEOUT,
    )
