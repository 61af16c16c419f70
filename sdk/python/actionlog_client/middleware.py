"""`ActionLogMiddleware`: record every HTTP request of an ASGI application as an action.

Each request becomes one finished action, queued when the response is done: `action_type`
`http_request` (configurable), `action_name` the method and the route template
(`GET /items/{item_id}`, so one route is one name however many ids it serves; the raw path
when no route matched), `status` from the status code, `execution_time_ms` measured with a
monotonic clock, the client IP, the user agent, `user_id` from an optional callable, and
`correlation_id` from the request-id header (`X-Request-ID` by default; the response's
when the request had none). `metadata` holds the method, the raw path and the status code;
the query string is left out because it often carries secrets. Actions recorded while the
request runs (`logger.action`, `@logger.track`) get the request's action as their
`parent_id` and its `correlation_id`.

Status codes: below 400 is `success`, 4xx `warning` (the request was refused; the statistics
count it neither as a success nor as a failure), 5xx `failure` (with `error_type` `HTTP 5xx`);
an exception is a `failure` with its type and message and is re-raised unchanged. Pass
`status_of` to map codes differently.

The request pays for building one dict and one enqueue (measured in bench/middleware.py);
nothing here waits for the service, and a failure inside the middleware's own bookkeeping
(a `user_id` callable that raises, say) is logged, never raised into the request.
"""

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from actionlog_client import _context
from actionlog_client._ids import new_id
from actionlog_client.aio import AsyncActionLogger
from actionlog_client.logger import ActionLogger, exception_fields

log = logging.getLogger("actionlog_client")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def default_status(code: int) -> str:
    if code >= 500:
        return "failure"
    if code >= 400:
        return "warning"
    return "success"


class ActionLogMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        logger: ActionLogger | AsyncActionLogger,
        *,
        action_type: str = "http_request",
        skip_paths: Iterable[str] = ("/health", "/ready", "/metrics"),
        skip_prefixes: Iterable[str] = (),
        user_id: Callable[[Scope], str | None] | None = None,
        request_id_header: str = "x-request-id",
        service: str | None = None,
        source: str = "http",
        status_of: Callable[[int], str] = default_status,
    ) -> None:
        self.app = app
        self.logger = logger.sync if isinstance(logger, AsyncActionLogger) else logger
        self.action_type = action_type
        self.skip_paths = frozenset(skip_paths)
        self.skip_prefixes = tuple(skip_prefixes)
        self.user_id = user_id
        self.request_id_header = request_id_header.lower().encode("latin-1")
        self.service = service
        self.source = source
        self.status_of = status_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in self.skip_paths or (self.skip_prefixes and path.startswith(self.skip_prefixes)):
            await self.app(scope, receive, send)
            return
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        root_path = scope.get("root_path", "")
        user_agent = request_id = None
        for name, value in scope.get("headers") or ():
            if name == b"user-agent":
                user_agent = value.decode("latin-1")[:1024]
            elif name == self.request_id_header:
                request_id = value.decode("latin-1")[:255]
        # the request's action id exists from the start, so actions recorded while the
        # request runs are its children (parent_id) and share its correlation_id
        action_id = new_id()
        token = _context.enter(action_id, request_id)
        response: dict[str, Any] = {
            "id": action_id,
            "status": 500,
            "request_id": request_id,  # the request's, else the response's (below)
            "user_agent": user_agent,
        }

        async def send_and_watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                if response["request_id"] is None:
                    for name, value in message.get("headers") or ():
                        if name.lower() == self.request_id_header:
                            response["request_id"] = value.decode("latin-1")[:255]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except BaseException as exc:
            self._record(scope, root_path, started_at, started, response, exc)
            raise
        finally:
            _context.leave(token)
        self._record(scope, root_path, started_at, started, response, None)

    def _record(
        self,
        scope: Scope,
        root_path: str,
        started_at: datetime,
        started: float,
        response: dict[str, Any],
        exc: BaseException | None,
    ) -> None:
        try:
            elapsed_ms = round((time.perf_counter() - started) * 1000)
            code = int(response["status"])
            method = scope.get("method", "GET")
            client = scope.get("client")
            body: dict[str, Any] = {
                "id": response["id"],
                "action_type": self.action_type,
                "action_name": f"{method} {self._template(scope, root_path)}"[:255],
                "status": self.status_of(code),
                "source": self.source,
                "execution_time_ms": min(elapsed_ms, 2**31 - 1),
                "started_at": started_at,
                "completed_at": datetime.now(UTC),
                "metadata": {"method": method, "path": scope.get("path"), "status_code": code},
            }
            if self.service is not None:
                body["service"] = self.service
            if client:
                body["ip_address"] = client[0]
            if response["user_agent"]:
                body["user_agent"] = response["user_agent"]
            if response["request_id"]:
                body["correlation_id"] = response["request_id"]
            if exc is not None:
                body.update(exception_fields(exc))
            elif code >= 500:
                body["error_type"] = f"HTTP {code}"
            if self.user_id is not None and (user := self._user(scope)) is not None:
                body["user_id"] = user
            self.logger._record_ready(body)
        except Exception:
            log.exception("actionlog: the middleware could not record a request")

    def _user(self, scope: Scope) -> str | None:
        assert self.user_id is not None
        try:
            user = self.user_id(scope)
        except Exception:
            log.exception("actionlog: the user_id callable raised")
            return None
        return None if user is None else str(user)[:255]

    @staticmethod
    def _template(scope: Scope, root_path: str) -> str:
        route = scope.get("route")
        template = getattr(route, "path", None) or getattr(route, "path_format", None)
        if not isinstance(template, str):
            return str(scope.get("path", ""))
        mounted = str(scope.get("root_path", ""))[len(root_path) :]
        return mounted + template
