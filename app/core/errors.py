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


def service_error_response(exc: ServiceError, retry_after: str) -> ErrorResponse:
    """The response to a ServiceError: its status, `{"detail": ...}` and its headers."""
    headers = dict(exc.headers or {})
    if isinstance(exc, ServiceUnavailable):
        headers["Retry-After"] = retry_after
    return ErrorResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def unavailable_response(exc: Exception, retry_after: str) -> ErrorResponse:
    """503 with Retry-After, for a database that cannot be reached."""
    logger.warning("database unavailable: %s: %s", exc.__class__.__name__, exc)
    return ErrorResponse(
        {"detail": ServiceUnavailable.default_detail},
        status_code=503,
        headers={"Retry-After": retry_after},
    )


def install_error_handlers(app: FastAPI) -> None:
    retry_after = str(app.state.settings.retry_after_seconds)

    async def handle_service_error(_: Request, exc: Exception) -> ErrorResponse:
        assert isinstance(exc, ServiceError)
        return service_error_response(exc, retry_after)

    async def handle_database_unavailable(_: Request, exc: Exception) -> ErrorResponse:
        return unavailable_response(exc, retry_after)

    async def handle_invalid_request(_: Request, exc: Exception) -> ErrorResponse:
        assert isinstance(exc, RequestValidationError)
        return ErrorResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)

    async def handle_unexpected(request: Request, exc: Exception) -> ErrorResponse:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return await handle_database_unavailable(request, exc)
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return ErrorResponse({"detail": "Internal server error"}, status_code=500)

    app.add_exception_handler(ServiceError, handle_service_error)
    app.add_exception_handler(RequestValidationError, handle_invalid_request)
    for exc_class in DATABASE_UNAVAILABLE:
        app.add_exception_handler(exc_class, handle_database_unavailable)
    app.add_exception_handler(Exception, handle_unexpected)
