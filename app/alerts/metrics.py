"""What a rule measures over its window, per group: read from the statistics service.

Action metrics come from `StatsService.summary`, which reads whole hours and days from the
rollups and only the ragged minutes at the window's ends from raw rows, so a rule costs the
same whatever the traffic. `audit_changes` counts the tenant's audit rows in the window.

A grouped rule measures each group seen in the window, and the groups that are firing (a
group that went quiet is measured too, so that it can resolve). Actions without a value for
the grouping field form no group.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.filters import ActionFilter
from app.alerts.models import AlertRule
from app.alerts.repository import AlertRepository
from app.stats.schemas import ActionStats
from app.stats.service import StatsService

UNGROUPED = ""


@dataclass(frozen=True)
class Measurement:
    value: float | None
    count: int


def window(rule: AlertRule, now: datetime, unit_seconds: float) -> tuple[datetime, datetime]:
    return now - timedelta(seconds=rule.window_minutes * unit_seconds), now


def _value(metric: str, stats: ActionStats) -> Measurement:
    count = stats.total_actions
    if metric == "failure_count":
        return Measurement(float(stats.failed_actions), count)
    if metric == "error_rate":
        rate = None if count == 0 else 100.0 * stats.failed_actions / count
        return Measurement(rate, count)
    if metric == "latency_avg":
        return Measurement(stats.average_execution_time_ms, count)
    p95 = stats.p95_execution_time_ms
    return Measurement(None if p95 is None else float(p95), count)


def _filter(rule: AlertRule, since: datetime, until: datetime, **group: Any) -> ActionFilter:
    filters = rule.filters or {}
    types = (filters["action_type"],) if filters.get("action_type") else ()
    providers = (filters["provider_name"],) if filters.get("provider_name") else ()
    return ActionFilter(
        action_types=group.get("action_types", types),
        providers=group.get("providers", providers),
        service=filters.get("service"),
        since=since,
        until=until,
    )


async def measure(
    session: AsyncSession,
    rule: AlertRule,
    since: datetime,
    until: datetime,
    firing: set[str],
) -> dict[str, Measurement]:
    """The rule's value and row count per group (UNGROUPED when not grouped)."""
    if rule.metric == "audit_changes":
        count = await AlertRepository(session, rule.tenant_id).audit_changes(since, until)
        return {UNGROUPED: Measurement(float(count), count)}
    stats = StatsService(session, rule.tenant_id)
    overall = await stats.summary(_filter(rule, since, until))
    if rule.group_by is None:
        return {UNGROUPED: _value(rule.metric, overall)}
    seen = (
        overall.actions_by_provider if rule.group_by == "provider_name" else overall.actions_by_type
    )
    measured: dict[str, Measurement] = {}
    for group in sorted(set(seen) | firing):
        field = "providers" if rule.group_by == "provider_name" else "action_types"
        summary = await stats.summary(_filter(rule, since, until, **{field: (group,)}))
        measured[group] = _value(rule.metric, summary)
    return measured


def breached(rule: AlertRule, measurement: Measurement) -> bool:
    """Whether the condition holds (never below `min_count` rows, never without a value)."""
    value = measurement.value
    if value is None or (rule.min_count is not None and measurement.count < rule.min_count):
        return False
    threshold = rule.threshold
    return {
        ">": value > threshold,
        ">=": value >= threshold,
        "<": value < threshold,
        "<=": value <= threshold,
    }[rule.op]
