"""Liveness and readiness probes."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from app.core.errors import ErrorBody

router = APIRouter(tags=["ops"])


class Health(BaseModel):
    status: str


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is alive (no dependency is checked)."""
    return Health(status="ok")


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
    """The database answers a query; otherwise 503 with Retry-After."""
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse(
            {"detail": "Database unreachable"},
            status_code=503,
            headers={"Retry-After": str(request.app.state.settings.retry_after_seconds)},
        )
    return Health(status="ready")
