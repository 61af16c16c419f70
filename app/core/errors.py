"""One error hierarchy for the service, rendered by one handler as JSON `{"detail": ...}`.

Services and repositories raise these; they never see HTTP. A 500 is always a bug, so an
unexpected exception is logged with its request id and answered without a stack trace.
"""

import json
import logging
import re
from typing import Any, ClassVar

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.inputs import WHOLE_NUMBER
from app.core.state import core_state

logger = logging.getLogger("actionlog")


class ServiceError(Exception):
    status_code = 400
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: Any = None) -> None:
        super().__init__(detail)
        self.detail = detail if detail is not None else self.__class__.default_detail
        self.extra_headers: dict[str, str] = {}

    default_detail = "Bad request"


class BadRequest(ServiceError):
    status_code = 400


class Unauthorized(ServiceError):
    status_code = 401
    default_detail = "Missing or invalid API key"
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": "Bearer"}


class Forbidden(ServiceError):
    status_code = 403
    default_detail = "Forbidden"


class NotFound(ServiceError):
    status_code = 404
    default_detail = "Not found"


class Conflict(ServiceError):
    status_code = 409
    default_detail = "Conflict"


class PayloadTooLarge(ServiceError):
    status_code = 413
    default_detail = "Request body too large"


class Unprocessable(ServiceError):
    status_code = 422
    default_detail = "Unprocessable request"


class ServiceUnavailable(ServiceError):
    status_code = 503
    default_detail = "Database unavailable, retry later"


class ErrorResponse(JSONResponse):
    """An error body, written in ASCII: it may quote input that is not valid Unicode."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


class ErrorBody(BaseModel):
    """The body of every error response."""

    detail: Any


class ValidationIssue(BaseModel):
    """One invalid field, as FastAPI's own validation errors name it."""

    type: str
    loc: list[str | int]
    msg: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationErrorBody(BaseModel):
    """The body of every 422: a list naming each invalid field."""

    detail: list[ValidationIssue]


UNPROCESSABLE = {
    "model": ValidationErrorBody,
    "description": (
        "Invalid input: each bad field named in `detail`; a body that is not JSON at all is "
        'a 422 too, with loc ["body", <position>] and type json_invalid'
    ),
}


def error_responses(*errors: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route that can raise these errors (a 422 is the list shape)."""
    return {
        e.status_code: UNPROCESSABLE
        if e.status_code == 422
        else {"model": ErrorBody, "description": e.default_detail}
        for e in errors
    }


DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError, OSError)

Loc = tuple[str | int, ...]


def invalid(loc: Loc, message: str, kind: str = "value_error") -> Unprocessable:
    """A 422 naming one request field, e.g. `invalid(("query", "since"), "...")`.

    Its `detail` has the shape of FastAPI's own validation errors: a list of `{"type", "loc",
    "msg"}`, so every 422 of the service reads the same.
    """
    return Unprocessable([{"type": kind, "loc": list(loc), "msg": message}])


# SQLSTATE classes and codes that mean "not now" rather than "never": connection exceptions
# (08), operator intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03 the database
# is starting up), too many connections, and a server out of resources (53).
_UNAVAILABLE_SQLSTATES = ("08", "57P", "53")


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error, raw (asyncpg) or wrapped by SQLAlchemy, if any."""
    for candidate in (exc, getattr(exc, "orig", None), exc.__cause__):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be reached now (rather than a bug or bad input):
    the server is down, starting up after a crash, shutting down or out of connections."""
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = _sqlstate(exc)
    return state is not None and state.startswith(_UNAVAILABLE_SQLSTATES)


def error_response(exc: BaseException, retry_after: str) -> ErrorResponse:
    """The one rendering of an error: a ServiceError as itself, an unreachable database as
    503 with Retry-After, anything else as a logged 500 without a stack trace (and with
    `Connection: close`: after a bug, the connection's state is not trusted)."""
    if isinstance(exc, ServiceError):
        headers = {**(exc.headers or {}), **exc.extra_headers}
        if isinstance(exc, ServiceUnavailable):
            headers["Retry-After"] = retry_after
        return ErrorResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
    if is_database_unavailable(exc):
        logger.warning("database unavailable: %s: %s", exc.__class__.__name__, exc)
        return ErrorResponse(
            {"detail": ServiceUnavailable.default_detail},
            status_code=503,
            headers={"Retry-After": retry_after},
        )
    logger.error("unhandled error: %s", exc.__class__.__name__, exc_info=exc)
    return ErrorResponse(
        {"detail": "Internal server error"}, status_code=500, headers={"Connection": "close"}
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some operation serves at this path, from the OpenAPI document (Starlette's
    own 405 names only the methods of the first route that matched the path). As in routing, a
    literal segment wins over a parameter: `/actions/batch` is not `/actions/{action_id}`."""
    matches: dict[int, set[str]] = {}
    for template, item in request.app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods = matches.setdefault(template.count("{"), set())
            methods |= {method.upper() for method in item}
    return sorted(matches[min(matches)]) if matches else []


def _worded(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error in the service's words, where the validator's name the wrong thing:
    the length of text counted in characters (a length checked after a text validator is worded
    for lists: "at most 100 items"), and a fraction where an integer is declared."""
    kind, given, context = error.get("type"), error.get("input"), error.get("ctx") or {}
    if kind in ("too_long", "too_short") and isinstance(given, str):
        most = kind == "too_long"
        name, bound = ("max_length", "at most") if most else ("min_length", "at least")
        limit = context.get(name)
        unit = "character" if limit == 1 else "characters"
        message = f"String should have {bound} {limit} {unit}"
        return {**error, "type": f"string_{kind}", "msg": message, "ctx": {name: limit}}
    if kind == "int_from_float":
        plain = {key: value for key, value in error.items() if key != "ctx"}
        return {**plain, "msg": WHOLE_NUMBER}
    return error


def install_error_handlers(app: FastAPI) -> None:
    retry_after = str(core_state(app).settings.retry_after_seconds)

    async def handle_error(_: Request, exc: Exception) -> ErrorResponse:
        return error_response(exc, retry_after)

    async def handle_invalid_request(_: Request, exc: Exception) -> ErrorResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [_worded(error) for error in exc.errors()]
        return ErrorResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    async def handle_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # a body that is not even text (invalid UTF-8): a 422 like any unparsable body
            message = "body is not valid JSON (UTF-8 text expected)"
            return error_response(invalid(("body",), message, "json_invalid"), retry_after)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return ErrorResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    # Every other exception reaches RequestContextMiddleware (app/core/middleware.py), which
    # renders it with `error_response` inside the request's context: with its request id,
    # Server-Timing and log lines, which Starlette's outermost 500 handler would not have.
    app.add_exception_handler(ServiceError, handle_error)
    app.add_exception_handler(RequestValidationError, handle_invalid_request)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    for exc_class in DATABASE_UNAVAILABLE:
        app.add_exception_handler(exc_class, handle_error)
    app.add_exception_handler(DBAPIError, handle_error)
