"""Liveness and readiness probes, and the Prometheus metrics."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from app.core import citus, metrics
from app.core.errors import ErrorBody, NotFound, Unauthorized
from app.core.state import core_state

router = APIRouter(tags=["ops"])


class Health(BaseModel):
    status: str


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is alive (no dependency is checked)."""
    return Health(status="ok")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        401: {"model": ErrorBody, "description": "METRICS_TOKEN is set and was not sent"},
        404: {"model": ErrorBody, "description": "Metrics are turned off"},
    },
)
async def prometheus_metrics(
    request: Request,
    authorization: Annotated[
        str | None, Header(max_length=512, description="Bearer <METRICS_TOKEN>, when one is set")
    ] = None,
) -> Response:
    """Every worker's metrics, in Prometheus text format."""
    settings = core_state(request.app).settings
    if not settings.metrics_enabled:
        raise NotFound()
    token = settings.metrics_token
    if token is not None:
        expected = f"Bearer {token.get_secret_value()}".encode()
        if not authorization or not hmac.compare_digest(authorization.encode(), expected):
            raise Unauthorized("Missing or invalid metrics token")
    body, content_type = metrics.render(core_state(request.app).pool_status)
    return Response(body, media_type=content_type)


@router.get(
    "/ready",
    response_model=Health,
    responses={
        503: {
            "model": ErrorBody,
            "description": "Database unreachable",
            "headers": {
                "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
            },
        }
    },
)
async def ready(request: Request) -> Health | JSONResponse:
    """The database answers a query (on a Citus cluster: every worker too); otherwise 503 with
    Retry-After."""
    state = core_state(request.app)
    detail = "Database unreachable"
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            unreachable = await citus.unreachable_workers(connection)
        if unreachable:
            detail = f"Database worker unreachable: {'; '.join(unreachable)}"
            raise ConnectionError(detail)
    except Exception:
        return JSONResponse(
            {"detail": detail},
            status_code=503,
            headers={"Retry-After": str(state.settings.retry_after_seconds)},
        )
    return Health(status="ready")
