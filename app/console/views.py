"""What the console's pages show, shaped from the domain services' answers (no SQL here).

Time ranges: the Failed and Statistics pages take `range` (1h, 24h, 7d, 30d; default 24h),
which sets `since` when the query has none, and the chart's bucket size follows the span
(minutes up to 2 hours, hours up to 8 days, then days), always within the API's 1500 buckets.

The session report reads at most REPORT_LIMIT actions of one `session_id`, oldest
first; a longer session is reported on its first REPORT_LIMIT actions and says so, while its
summary figures (from the statistics service) always count every action.
"""

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal

from app.actions.filters import ActionFilter
from app.actions.service import ActionService
from app.actions.statuses import FAILED
from app.core.db import utcnow
from app.stats.schemas import ActionStats, Interval
from app.stats.service import StatsService

Range = Literal["1h", "24h", "7d", "30d"]
RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
REPORT_LIMIT = 5000


def ranged(f: ActionFilter, range_: Range, now: datetime | None = None) -> ActionFilter:
    """The filter with `since` set from the range when the query gave none."""
    if f.since is not None:
        return f
    end = f.until or now or utcnow()
    return replace(f, since=end - RANGES[range_])


def interval_for(f: ActionFilter, now: datetime | None = None) -> Interval:
    end = f.until or now or utcnow()
    span = end - f.since if f.since else timedelta(days=1)
    if span <= timedelta(hours=2):
        return "minute"
    if span <= timedelta(days=8):
        return "hour"
    return "day"


def chart_data(timeseries: Any) -> dict[str, Any]:
    """Columns for the stacked chart: bucket starts (Unix seconds) and counts by status:
    successful, failed (failure, timeout), other (running, warning, cancelled)."""
    buckets = timeseries.buckets
    return {
        "interval": timeseries.interval,
        "x": [int(b.start.timestamp()) for b in buckets],
        "successful": [b.successful for b in buckets],
        "failed": [b.failed for b in buckets],
        "other": [b.total - b.successful - b.failed for b in buckets],
        "avg": [b.average_execution_time_ms for b in buckets],
    }


async def session_report(
    actions: ActionService, stats: StatsService, session_id: str
) -> dict[str, Any]:
    """Everything of one session: summary, failed actions first, then every action in order."""
    f = ActionFilter(session_id=session_id)
    summary: ActionStats = await stats.summary(f)
    rows, more = await actions.page(f, limit=REPORT_LIMIT, order="asc", cursor=None, skip=0)
    starts = [r["started_at"] or r["created_at"] for r in rows]
    ends = [r["completed_at"] or r["created_at"] for r in rows]
    duration = (max(ends) - min(starts)) / timedelta(milliseconds=1) if rows else None
    return {
        "session_id": session_id,
        "summary": {
            "total": summary.total_actions,
            "successful": summary.successful_actions,
            "failed": summary.failed_actions,
            "success_rate": summary.success_rate,
            "first_started_at": min(starts) if rows else None,
            "last_completed_at": max(ends) if rows else None,
            "duration_ms": round(duration) if duration is not None else None,
            "average_execution_time_ms": summary.average_execution_time_ms,
        },
        "failed": [r for r in rows if r["status"] in FAILED],
        "actions": rows,
        "truncated": more is not None,
    }


def breakdowns(summary: ActionStats) -> list[tuple[str, str, dict[str, Any]]]:
    """(title, filter name, {value: count, success rate, average…}) for the stats tables."""
    return [
        ("type", "action_type", summary.by_type),
        ("provider", "provider_name", summary.by_provider_stats),
        ("service", "service", summary.by_service_stats),
        ("source", "source", summary.by_source_stats),
    ]
