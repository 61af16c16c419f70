"""The hot path of recording: ordinary POSTs to /api/v1/logs/actions and /actions/batch.

Recording is where the traffic is: applications send each action as it happens. This ASGI
layer serves those requests without the framework's per-request machinery (routing,
dependency solving, request objects): it reads the body, authenticates the key, validates the
body with the routes' own pydantic models (straight from the JSON bytes), records through the
same `ActionService` (and so the same group commit) and answers 201 once the rows are
committed.

Only ordinary requests are served here. Anything else goes on, body included, to the FastAPI
routes in `router.py`, which stay the one source of every error response and of the OpenAPI
description: a request with an `Idempotency-Key`, a content type other than JSON, a missing,
unknown or read-only key, or a body that fails validation. A request gets the same answer on
either path, and the routes' tests exercise both.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import UUID

from pydantic import Field, TypeAdapter, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.actions.idempotency import Written
from app.actions.router import written_response
from app.actions.schemas import MAX_BATCH, ActionCreate
from app.actions.service import ActionService
from app.core.auth import resolve_key
from app.core.errors import (
    DATABASE_UNAVAILABLE,
    ServiceError,
    Unauthorized,
    service_error_response,
    unavailable_response,
)

RECORD = "/api/v1/logs/actions"
RECORD_BATCH = "/api/v1/logs/actions/batch"
_ONE = TypeAdapter(ActionCreate)
_BATCH = TypeAdapter(Annotated[list[ActionCreate], Field(min_length=1, max_length=MAX_BATCH)])


def _first_headers(raw: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Headers by name; of a repeated header the first counts, as for the routes."""
    headers: dict[bytes, bytes] = {}
    for name, value in raw:
        headers.setdefault(name, value)
    return headers


def _presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key as the routes read it: `X-API-Key`, else an `Authorization: Bearer` token."""
    if api_key := headers.get(b"x-api-key"):
        return api_key.decode("latin-1")
    scheme, _, credentials = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    return credentials if scheme.lower() == "bearer" and credentials else None


def _is_json(content_type: bytes | None) -> bool:
    return content_type is not None and content_type.split(b";")[0].strip() == b"application/json"


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A `receive` that hands the already-read body on to the next app."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class IngestLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ours = scope["type"] == "http" and scope["method"] == "POST"
        path = scope["path"] if ours else None
        headers = _first_headers(scope["headers"]) if path in (RECORD, RECORD_BATCH) else {}
        if (
            not headers
            or b"idempotency-key" in headers
            or not _is_json(headers.get(b"content-type"))
        ):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        retry_after = str(state.settings.retry_after_seconds)
        try:
            body = await _read_body(receive)
        except ServiceError as exc:  # over the body limit, while streaming
            await service_error_response(exc, retry_after)(scope, receive, send)
            return
        if body is None:
            return
        try:
            ordinary = await self._ordinary(state, headers, body, batch=path == RECORD_BATCH)
        except DATABASE_UNAVAILABLE as exc:  # while finding the key
            await unavailable_response(exc, retry_after)(scope, receive, send)
            return
        if ordinary is None:
            await self.app(scope, _replaying(body, receive), send)
            return
        key, data = ordinary
        try:
            written = await self._record(state, key.tenant_id, data, batch=path == RECORD_BATCH)
        except ServiceError as exc:
            response = service_error_response(exc, retry_after)
        except DATABASE_UNAVAILABLE as exc:
            response = unavailable_response(exc, retry_after)
        else:
            response = written_response(written)
        await response(scope, receive, send)

    @staticmethod
    async def _record(state: Any, tenant_id: UUID, data: Any, *, batch: bool) -> Written:
        """Record through the group-commit writer, or in a session of its own without one."""
        if state.writer is not None:  # the writer commits: no session is needed
            service = ActionService(
                None, tenant_id, state.settings, state.redactor, writer=state.writer
            )
            return await (service.record_batch(data) if batch else service.record(data))
        async with state.sessionmaker() as session:
            service = ActionService(session, tenant_id, state.settings, state.redactor)
            written = await (service.record_batch(data) if batch else service.record(data))
            await session.commit()
        return written

    @staticmethod
    async def _ordinary(
        state: Any, headers: dict[bytes, bytes], body: bytes, *, batch: bool
    ) -> tuple[Any, Any] | None:
        """The caller's key and the validated body, or None when the route must answer."""
        try:
            key = await resolve_key(state.key_lookups, _presented_key(headers))
        except Unauthorized:
            return None
        if "write" not in key.scopes:
            return None
        try:
            data = _BATCH.validate_json(body) if batch else _ONE.validate_json(body)
        except ValidationError:
            return None
        return key, data
