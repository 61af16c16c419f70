"""Statistics of a tenant's actions, shaped from the aggregates that stats.py reads.

The database does the counting; this module only folds a few grouped rows into the response:
the breakdowns, rates and averages, the zero-filled time buckets, and the failure patterns.
"""

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.filters import ActionFilter
from app.actions.models import HISTOGRAM_BUCKETS
from app.actions.payloads import invalid
from app.actions.rollups import percentile
from app.actions.stats import ActionStatsRepository, RollupStatsRepository
from app.actions.stats_schemas import (
    ActionStats,
    Bucket,
    FailurePattern,
    Interval,
    Timeseries,
    TypeStats,
    UserActivity,
)
from app.actions.statuses import FAILED, SUCCESSFUL
from app.core.db import utcnow

INTERVAL_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
DEFAULT_SPAN = {"minute": timedelta(hours=1), "hour": timedelta(days=1), "day": timedelta(days=30)}
MAX_BUCKETS = 1500

_MASKS = (
    (
        re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b", re.I),
        "<id>",
    ),
    (re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{12,}\b", re.I), "<id>"),
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "<email>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)


def mask_message(message: str) -> str:
    """The message with ids (UUIDs, long hex), e-mail addresses and numbers masked."""
    for pattern, replacement in _MASKS:
        message = pattern.sub(replacement, message)
    return message


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _average(total: int, count: int) -> float | None:
    return round(total / count, 2) if count else None


def _by_count(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


@dataclass
class _Tally:
    count: int = 0
    successful: int = 0
    failures: int = 0
    timed: int = 0
    time_sum: int = 0

    def add(self, status: str, count: int, timed: int, time_sum: int | None) -> None:
        self.count += count
        self.successful += count if status == SUCCESSFUL else 0
        self.failures += count if status in FAILED else 0
        self.timed += timed
        self.time_sum += int(time_sum or 0)

    def type_stats(self) -> TypeStats:
        return TypeStats(
            count=self.count,
            successful=self.successful,
            failures=self.failures,
            success_rate=_rate(self.successful, self.count),
            average_execution_time_ms=_average(self.time_sum, self.timed),
        )


@dataclass
class _Pattern:
    action_type: str
    error_type: str | None
    pattern: str | None
    count: int
    first_seen: datetime
    last_seen: datetime
    example_id: str

    def merge(self, row: Any) -> None:
        self.count += row.count
        self.first_seen = min(self.first_seen, row.first_seen)
        self.last_seen = max(self.last_seen, row.last_seen)
        self.example_id = max(self.example_id, row.example_id)


@dataclass(frozen=True)
class _Plan:
    """Where a filter's figures come from: whole hours of rollups, and raw rows for the rest."""

    rollups: ActionFilter | None
    raw: tuple[ActionFilter, ...]


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    floor = _floor_hour(moment)
    return floor if floor == moment else floor + timedelta(hours=1)


def plan(f: ActionFilter) -> _Plan:
    """Serve the whole hours of the range from rollups and its ragged edges from raw rows.

    Filters on fields that rollups do not keep (user, session, text, durations …) read raw
    rows for the whole range.
    """
    if not RollupStatsRepository.covers(f):
        return _Plan(None, (f,))
    start = None if f.since is None else _ceil_hour(f.since)
    end = None if f.until is None else _floor_hour(f.until)
    if start is not None and end is not None and start >= end:
        return _Plan(None, (f,))
    raw = []
    if f.since is not None and start is not None and f.since < start:
        raw.append(replace(f, until=start))
    if f.until is not None and end is not None and end < f.until:
        raw.append(replace(f, since=end))
    return _Plan(replace(f, since=start, until=end), tuple(raw))


def _add(histogram: list[int], more: Iterable[int]) -> None:
    for index, count in enumerate(more):
        histogram[index] += count


@dataclass
class _BucketSum:
    total: int = 0
    failed: int = 0
    timed: int = 0
    time_sum: int = 0

    def add(self, row: Any) -> None:
        self.total += int(row.total)
        self.failed += int(row.failed)
        self.timed += int(row.timed)
        self.time_sum += int(row.time_sum or 0)


class StatsService:
    def __init__(
        self, session: AsyncSession, tenant_id: UUID, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.stats = ActionStatsRepository(session, tenant_id)
        self.rollups = RollupStatsRepository(session, tenant_id)
        self.clock = clock

    async def summary(self, f: ActionFilter) -> ActionStats:
        rows: list[Any] = []
        histogram = [0] * HISTOGRAM_BUCKETS
        where = plan(f)
        if where.rollups is not None:
            rollup_rows, rollup_histogram = await self.rollups.breakdown(where.rollups)
            rows.extend(rollup_rows)
            _add(histogram, rollup_histogram)
        for part in where.raw:
            rows.extend(await self.stats.breakdown(part))
            _add(histogram, await self.stats.histogram(part))
        overall = _Tally()
        types: defaultdict[str, _Tally] = defaultdict(_Tally)
        breakdowns: dict[str, Counter[str]] = defaultdict(Counter)
        for row in rows:
            overall.add(row.status, row.total, row.timed, row.time_sum)
            types[row.action_type].add(row.status, row.total, row.timed, row.time_sum)
            for name in ("action_type", "provider_name", "source", "service", "status"):
                if (value := getattr(row, name)) is not None:
                    breakdowns[name][value] += row.total
        by_type = _by_count(breakdowns["action_type"])
        return ActionStats(
            total_actions=overall.count,
            successful_actions=overall.successful,
            failed_actions=overall.failures,
            average_execution_time_ms=_average(overall.time_sum, overall.timed),
            actions_by_type=by_type,
            actions_by_provider=_by_count(breakdowns["provider_name"]),
            success_rate=_rate(overall.successful, overall.count),
            by_status=_by_count(breakdowns["status"]),
            by_source=_by_count(breakdowns["source"]),
            by_service=_by_count(breakdowns["service"]),
            p50_execution_time_ms=percentile(histogram, 50),
            p95_execution_time_ms=percentile(histogram, 95),
            p99_execution_time_ms=percentile(histogram, 99),
            by_type={name: types[name].type_stats() for name in by_type},
        )

    async def timeseries(self, f: ActionFilter, interval: Interval) -> Timeseries:
        """Buckets from the one holding `since` to the one holding the end of the range.

        The range defaults to the last hour (minute), day (hour) or 30 days (day) up to now.
        """
        seconds = INTERVAL_SECONDS[interval]
        until = f.until or self.clock()
        since = f.since or until - DEFAULT_SPAN[interval]
        first = math.floor(since.timestamp() / seconds)
        last = math.ceil(until.timestamp() / seconds) - 1
        if last - first + 1 > MAX_BUCKETS:
            raise invalid(
                ("query", "interval"),
                f"the range holds more than {MAX_BUCKETS} {interval} buckets; "
                "narrow since/until or use a larger interval",
            )
        ranged = replace(f, since=since, until=until)
        where = plan(ranged) if seconds >= 3600 else _Plan(None, (ranged,))
        found: defaultdict[int, _BucketSum] = defaultdict(_BucketSum)
        if where.rollups is not None:
            for row in await self.rollups.hours(where.rollups):
                found[math.floor(row.hour.timestamp() / seconds)].add(row)
        for part in where.raw:
            for row in await self.stats.buckets(part, seconds):
                found[int(row.bucket)].add(row)
        buckets = []
        for index in range(first, last + 1):
            row = found.get(index)
            buckets.append(
                Bucket(
                    start=datetime.fromtimestamp(index * seconds, UTC),
                    total=row.total if row else 0,
                    failed=row.failed if row else 0,
                    average_execution_time_ms=_average(row.time_sum, row.timed) if row else None,
                )
            )
        return Timeseries(interval=interval, since=since, until=until, buckets=buckets)

    async def users(self, f: ActionFilter, limit: int) -> list[UserActivity]:
        rows = await self.stats.users(f, limit)
        latest = await self.stats.last_actions(f, [row.user_id for row in rows]) if rows else []
        last = {row.user_id: row for row in latest}
        return [
            UserActivity(
                user_id=row.user_id,
                total_actions=row.total,
                failed_actions=row.failed,
                last_action_at=row.last_action_at,
                last_action_id=last[row.user_id].id if row.user_id in last else None,
                last_action_type=last[row.user_id].action_type if row.user_id in last else None,
            )
            for row in rows
        ]

    async def failures(self, f: ActionFilter, limit: int) -> list[FailurePattern]:
        """Failure groups, most frequent first: by error_type, else by masked message."""
        patterns: dict[tuple[str, str | None, str | None], _Pattern] = {}

        def collect(rows: Iterable[Any], typed: bool) -> None:
            for row in rows:
                error_type = row.detail if typed else None
                pattern = None if typed or row.detail is None else mask_message(row.detail)
                key = (row.action_type, error_type, pattern)
                if key in patterns:
                    patterns[key].merge(row)
                else:
                    patterns[key] = _Pattern(
                        row.action_type,
                        error_type,
                        pattern,
                        row.count,
                        row.first_seen,
                        row.last_seen,
                        row.example_id,
                    )

        collect(await self.stats.failure_groups(f, typed=True), typed=True)
        collect(await self.stats.failure_groups(f, typed=False), typed=False)
        ranked = sorted(patterns.values(), key=lambda p: (-p.count, -p.last_seen.timestamp()))
        return [
            FailurePattern(
                action_type=p.action_type,
                error_type=p.error_type,
                pattern=p.pattern,
                count=p.count,
                first_seen=p.first_seen,
                last_seen=p.last_seen,
                example_id=UUID(p.example_id),
            )
            for p in ranked[:limit]
        ]
