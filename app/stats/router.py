"""HTTP routes of action statistics: summary, time series, user activity, failure patterns.

Every route takes the list filters of `GET /api/v1/logs/actions` (including `since` and
`until`) and needs the `read` scope.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.actions.filters import Filters
from app.core.auth import ReadSessionDep, ReadTenant
from app.core.errors import Forbidden, Unauthorized, Unprocessable, error_responses
from app.stats.schemas import (
    ActionStats,
    FailurePattern,
    Interval,
    Timeseries,
    UserActivity,
)
from app.stats.service import StatsService


async def stats_service(tenant: ReadTenant, session: ReadSessionDep) -> StatsService:
    return StatsService(session, tenant.tenant_id)


Stats = Annotated[StatsService, Depends(stats_service)]

router = APIRouter(
    prefix="/api/v1/logs/stats",
    tags=["statistics"],
    responses=error_responses(Unauthorized, Forbidden, Unprocessable),
)


@router.get("", response_model=ActionStats)
async def action_stats(stats: Stats, filters: Filters) -> ActionStats:
    """Totals, success rate, latency average and percentiles, breakdowns and per-type rates."""
    return await stats.summary(filters)


@router.get("/timeseries", response_model=Timeseries)
async def action_timeseries(
    stats: Stats,
    filters: Filters,
    interval: Annotated[Interval, Query(description="Bucket size: minute, hour or day")] = "hour",
) -> Timeseries:
    """Totals, failures and average time per UTC minute, hour or day; empty buckets are zeros."""
    return await stats.timeseries(filters, interval)


@router.get("/users", response_model=list[UserActivity])
async def user_activity(
    stats: Stats,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most users (1-1000)")] = 100,
) -> list[UserActivity]:
    """Per user: actions, failures and the last action, most active first."""
    return await stats.users(filters, limit)


@router.get("/failures", response_model=list[FailurePattern])
async def failure_patterns(
    stats: Stats,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most patterns (1-1000)")] = 50,
) -> list[FailurePattern]:
    """Failures grouped by type and error_type, or by masked message; most frequent first."""
    return await stats.failures(filters, limit)
