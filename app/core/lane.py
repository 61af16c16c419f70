"""A fast lane for the hot write paths: ordinary JSON POSTs served without the framework.

Recording is where the traffic is: applications send each action and each audit event as it
happens. A lane serves those requests without the framework's per-request machinery (routing,
dependency solving, request objects), calling the same functions as the routes in the same
order: `tenant_context` and `check_scope` (app/core/auth.py) for the caller, the routes' body
types for validation (straight from the JSON bytes), the domain's recorder for the write
(`prepare` then `write`, app/core/recording.py: the routes' very path, and so the same group
commit), `Written.response` for the answer and `error_response` for any error. Each domain
declares its paths with `recording_routes` (in its `dependencies.py`); the application puts
them all in one lane.

A caller that may not write (no key, an unknown, revoked or expired one — counted as a failed
authentication by the route, once — no `write` scope), a body that fails validation, a request
with an `Idempotency-Key` and a content type other than JSON go on, body included, to the
FastAPI routes, which render those answers and serve keyed writes; the OpenAPI description is
theirs too. A request gets the same answer on either path.
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.auth import AuthThrottle, KeyResolver, check_scope, tenant_context
from app.core.body import read_body, replaying
from app.core.errors import Forbidden, ServiceError, Unauthorized, error_response
from app.core.idempotency import Written
from app.core.recording import Recorder


@dataclass(frozen=True)
class LaneRoute:
    """One path of a lane: its body type, and the write (tenant, validated body)."""

    body: TypeAdapter[Any]
    record: Callable[[UUID, Any], Awaitable[Written]]


def recording_routes(
    path: str,
    body: TypeAdapter[Any],
    batch_path: str,
    batch_body: TypeAdapter[Any],
    recorders: Callable[[UUID], Recorder[Any, Any]],
) -> dict[str, LaneRoute]:
    """The lane's paths of one domain: a single write and a batch, through its recorders."""

    async def record(tenant_id: UUID, parsed: Any) -> Written:
        recorder = recorders(tenant_id)
        return await recorder.write(recorder.prepare(parsed))

    async def record_batch(tenant_id: UUID, parsed: Any) -> Written:
        recorder = recorders(tenant_id)
        return await recorder.write(recorder.prepare_batch(parsed))

    return {path: LaneRoute(body, record), batch_path: LaneRoute(batch_body, record_batch)}


def _is_json(content_type: str | None) -> bool:
    return content_type is not None and content_type.split(";")[0].strip() == "application/json"


class FastLane:
    """Serves the ordinary POSTs to `routes`; everything else goes on to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Mapping[str, LaneRoute],
        keys: KeyResolver,
        throttle: AuthThrottle,
        retry_after: str,
        body_timeout: float,
    ) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.routes = routes
        self.keys = keys
        self.throttle = throttle
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" and scope["method"] == "POST" else None
        route = self.routes.get(path) if path is not None else None
        headers = Headers(scope=scope) if route is not None else None
        if (
            route is None
            or headers is None
            or "idempotency-key" in headers
            or not _is_json(headers.get("content-type"))
        ):
            await self.app(scope, receive, send)
            return
        try:  # the routes' reader (a client gone before its body is ClientDisconnected)
            body = await read_body(receive, self.body_timeout)
        except ServiceError as exc:  # over the body limit while streaming, or too slow
            await error_response(exc, self.retry_after)(scope, receive, send)
            return
        try:
            response = await self._record(scope, headers, body, route)
        except Exception as exc:
            response = error_response(exc, self.retry_after)
        if response is None:
            await self.app(scope, replaying(body, receive), send)
            return
        await response(scope, receive, send)

    async def _record(
        self, scope: Scope, headers: Headers, body: bytes, route: LaneRoute
    ) -> Response | None:
        """The answer to an ordinary write, or None when the route must answer: a key that
        does not let the caller write, or a body that does not validate."""
        client = scope["client"][0] if scope.get("client") else None
        try:
            caller = await tenant_context(
                self.keys, headers, client, self.throttle, count_failure=False
            )
            context = check_scope(caller, "write")
        except (Unauthorized, Forbidden):
            return None
        try:
            parsed = route.body.validate_json(body)
        except ValidationError:
            return None
        # charged here, once validated: a body the route must answer is charged there
        await self.throttle.charge_key(str(context.key_id), True)
        return (await route.record(context.tenant_id, parsed)).response()
