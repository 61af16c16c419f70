"""ASGI middleware: request ids, security headers, the last word on errors, request body
limits, and one access-log line per request."""

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import metrics
from app.core.body import JSON_API_PREFIXES, ClientDisconnected
from app.core.errors import PayloadTooLarge, error_response

# nginx's status for a request whose client went away before it could be answered: counted as
# such, never as a server error
CLIENT_CLOSED_REQUEST = 499
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
# RateLimit-Policy / RateLimit of the request's key, set by the rate limiter (app/core/limits.py)
rate_limit_headers_var: ContextVar[tuple[tuple[bytes, bytes], ...]] = ContextVar(
    "rate_limit_headers", default=()
)
access_logger = logging.getLogger("actionlog.access")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every log record as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RequestContextMiddleware:
    """Gives each request an id (the caller's `X-Request-ID` if sane, else a new one).

    The id is echoed in the `X-Request-ID` response header and appears in every log line
    written while the request is handled. `Server-Timing: app;dur=<ms>` says how long the
    service took until the response started (the first byte of a streamed export). Every
    response also gets the security headers (`security_headers`).

    This is the innermost place that sees every exception: one that nothing else handled (a
    bug) is answered here as a JSON 500 that keeps the id, the timing and the headers, and is
    logged with the id. One raised after the response started cannot be answered any more: it
    is re-raised, and the server drops the connection (a download visibly cut short). A client
    that went away before sending its whole body is nobody's error: status 499 in the access
    log and the metrics, and no answer (nobody is left to read it).
    """

    def __init__(
        self,
        app: ASGIApp,
        headers: list[tuple[bytes, bytes]],
        retry_after: str,
        metrics: "RequestMetrics | None" = None,
    ) -> None:
        self.app = app
        self.headers = headers
        self.retry_after = retry_after
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _VALID_REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        limits_token = rate_limit_headers_var.set(())
        started = time.perf_counter()
        status = 500
        response_started = False
        first_byte = 0.0

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started, first_byte
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                first_byte = time.perf_counter() - started
                elapsed = f"app;dur={first_byte * 1000:.2f}"
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                headers.append((b"server-timing", elapsed.encode("latin-1")))
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in self.headers if k not in present)
                headers.extend(rate_limit_headers_var.get())
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except (ClientDisconnected, ClientDisconnect):
            if response_started:
                raise
            status = CLIENT_CLOSED_REQUEST
            access_logger.info("client disconnected before sending the whole request body")
        except Exception as exc:
            if response_started:
                access_logger.error("response aborted after it started: %r", exc, exc_info=exc)
                raise
            await error_response(exc, self.retry_after)(scope, receive, send_with_id)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            access_logger.info(
                "%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed_ms
            )
            if self.metrics is not None:
                self.metrics.observe(scope, status, first_byte or elapsed_ms / 1000)
            request_id_var.reset(token)
            rate_limit_headers_var.reset(limits_token)


class RequestMetrics:
    """Counts each request by method, route template and status (app/core/metrics.py), and
    keeps the pool gauges of this worker current (at most once a second)."""

    def __init__(
        self, pool_status: Callable[[], tuple[int, int]], fixed_routes: frozenset[str]
    ) -> None:
        self.pool_status = pool_status
        self.fixed_routes = fixed_routes  # served before routing (the ingest lane's paths)
        self._pool_checked = 0.0

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None)
        if route is None:
            route = scope["path"] if scope["path"] in self.fixed_routes else "<unmatched>"
        metrics.observe_request(scope["method"], route, status, seconds)
        now = time.monotonic()
        if now - self._pool_checked >= 1.0:
            self._pool_checked = now
            in_use, size = self.pool_status()
            metrics.POOL_IN_USE.set(in_use)
            metrics.POOL_SIZE.set(size)


def security_headers(public_url: str | None) -> list[tuple[bytes, bytes]]:
    """Headers every response carries unless the route set its own (the console sets its
    Cache-Control and CSP): no MIME sniffing, no referrer leaks, API answers never cached by
    a shared or browser cache, no framing, and HSTS when the service is served over https."""
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
        (b"x-frame-options", b"DENY"),
    ]
    if public_url is not None and public_url.lower().startswith("https://"):
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return headers


class BodyLimitMiddleware:
    """Refuses request bodies over the limit with 413, by header or while streaming."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        max_batch_bytes: int,
        batch_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_batch_bytes = max_batch_bytes
        self.batch_paths = batch_paths  # other paths that take batches (OTLP exports)

    def _limit(self, path: str) -> int:
        batch = path.rstrip("/").endswith("/batch") or path in self.batch_paths
        return self.max_batch_bytes if batch else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        detail = f"Request body exceeds the limit of {limit} bytes"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _send_413(send, detail)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(detail)
            return message

        await self.app(scope, limited_receive, send)


def _is_json_media_type(content_type: bytes) -> bool:
    media_type = content_type.split(b";")[0].strip().lower()
    return media_type == b"application/json" or media_type.endswith(b"+json")


class JsonBodyMiddleware:
    """Refuses a request body that is not declared as JSON with 415, on the JSON API.

    Without it, JSON sent as `text/plain`, or with no `Content-Type` at all, reaches the body
    validation as a string and is answered with a misleading 422.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PUT", "PATCH")
            and scope["path"].startswith(JSON_API_PREFIXES)
        ):
            headers = dict(scope["headers"])
            content_type = headers.get(b"content-type")
            has_body = headers.get(b"content-length", b"0") != b"0" or (
                b"transfer-encoding" in headers
            )
            if has_body and (content_type is None or not _is_json_media_type(content_type)):
                await _send_error(send, 415, "Content-Type must be application/json")
                return
        await self.app(scope, receive, send)


async def _send_413(send: Send, detail: str) -> None:
    await _send_error(send, 413, detail)


async def _send_error(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
