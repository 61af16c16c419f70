"""One error hierarchy for the service, rendered by one handler as JSON `{"detail": ...}`.

Services and repositories raise these; they never see HTTP. A 500 is always a bug, so an
unexpected exception is logged with its request id and answered without a stack trace.
"""

import json
import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

logger = logging.getLogger("actionlog")


class ServiceError(Exception):
    status_code = 400
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: Any = None) -> None:
        super().__init__(detail)
        self.detail = detail if detail is not None else self.__class__.default_detail

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


def error_responses(*errors: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route that can raise these errors."""
    return {e.status_code: {"model": ErrorBody, "description": e.default_detail} for e in errors}


DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError, OSError)

Loc = tuple[str | int, ...]


def invalid(loc: Loc, message: str, kind: str = "value_error") -> Unprocessable:
    """A 422 naming one request field, e.g. `invalid(("query", "since"), "...")`.

    Its `detail` has the shape of FastAPI's own validation errors: a list of `{"type", "loc",
    "msg"}`, so every 422 of the service reads the same.
    """
    return Unprocessable([{"type": kind, "loc": list(loc), "msg": message}])


def is_database_unavailable(exc: Exception) -> bool:
    """Whether `exc` means the database cannot be reached (rather than a bug or bad input)."""
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def error_response(exc: Exception, retry_after: str) -> ErrorResponse:
    """The one rendering of an error: a ServiceError as itself, an unreachable database as
    503 with Retry-After, anything else as a logged 500 without a stack trace."""
    if isinstance(exc, ServiceError):
        headers = dict(exc.headers or {})
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
    return ErrorResponse({"detail": "Internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    retry_after = str(app.state.settings.retry_after_seconds)

    async def handle_error(_: Request, exc: Exception) -> ErrorResponse:
        return error_response(exc, retry_after)

    async def handle_invalid_request(_: Request, exc: Exception) -> ErrorResponse:
        assert isinstance(exc, RequestValidationError)
        return ErrorResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)

    app.add_exception_handler(ServiceError, handle_error)
    app.add_exception_handler(RequestValidationError, handle_invalid_request)
    for exc_class in DATABASE_UNAVAILABLE:
        app.add_exception_handler(exc_class, handle_error)
    app.add_exception_handler(Exception, handle_error)
