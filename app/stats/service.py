"""Statistics of a tenant's actions, shaped from the aggregates that repository.py reads.

The database does the counting; this module only folds a few grouped rows into the response:
the breakdowns, rates and averages, the zero-filled time buckets, and the failure patterns.
"""

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.filters import ActionFilter
from app.actions.models import HISTOGRAM_BUCKETS
from app.actions.rollups import ALL_TIME, mask_message, percentile
from app.actions.statuses import FAILED, SUCCESSFUL
from app.core.db import utcnow
from app.core.errors import invalid
from app.stats.plan import PERIODS, USER_PERIODS, plan, sorted_parts
from app.stats.repository import (
    ActionStatsRepository,
    FailureRollupStatsRepository,
    GenaiRollupStatsRepository,
    RollupStatsRepository,
    UserRollupStatsRepository,
)
from app.stats.schemas import (
    ActionStats,
    Bucket,
    FailurePattern,
    GenAIStats,
    Interval,
    ModelUsage,
    Timeseries,
    TypeStats,
    UserActivity,
)

GROUPED = ("action_type", "provider_name", "service", "source")  # with rates and latency
INTERVAL_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
DEFAULT_SPAN = {"minute": timedelta(hours=1), "hour": timedelta(days=1), "day": timedelta(days=30)}
MAX_BUCKETS = 1500


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
    """A failure group; `sample`: its greatest raw message, shown masked for a typed group."""

    action_type: str
    error_type: str | None
    pattern: str | None
    count: int
    first_seen: datetime
    last_seen: datetime
    example_id: str
    sample: str | None

    def merge(self, other: "_Pattern") -> None:
        self.count += other.count
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        self.example_id = max(self.example_id, other.example_id)
        if other.sample is not None and (self.sample is None or other.sample > self.sample):
            self.sample = other.sample

    def shown(self) -> str | None:
        if self.error_type is None:
            return self.pattern
        return None if self.sample is None else mask_message(self.sample)


def _add(histogram: list[int], more: Iterable[int]) -> None:
    for index, count in enumerate(more):
        histogram[index] += count


@dataclass
class _BucketSum:
    total: int = 0
    successful: int = 0
    failed: int = 0
    timed: int = 0
    time_sum: int = 0

    def add(self, row: Any) -> None:
        self.total += int(row.total)
        self.successful += int(row.successful)
        self.failed += int(row.failed)
        self.timed += int(row.timed)
        self.time_sum += int(row.time_sum or 0)


NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass
class _UserSum:
    total: int = 0
    failed: int = 0
    last_action_at: datetime = NEVER

    def add(self, row: Any) -> None:
        self.total += int(row.total)
        self.failed += int(row.failed)
        self.last_action_at = max(self.last_action_at, row.last_action_at)


def genai_stats(rows: Iterable[Any]) -> GenAIStats | None:
    """Calls and token sums overall, per model and per provider; None without any call."""
    totals = [0, 0, 0]
    by_model: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_provider: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        counts = (int(row.calls), int(row.input_tokens or 0), int(row.output_tokens or 0))
        sums = [totals, by_model[row.model]]
        if row.provider_name:
            sums.append(by_provider[row.provider_name])
        for target in sums:
            for index, count in enumerate(counts):
                target[index] += count

    def usage(counts: list[int]) -> ModelUsage:
        return ModelUsage(calls=counts[0], input_tokens=counts[1], output_tokens=counts[2])

    def ranked(found: dict[str, list[int]]) -> dict[str, ModelUsage]:
        order = sorted(
            (item for item in found.items() if item[1][0]), key=lambda i: (-i[1][0], i[0])
        )
        return {name: usage(counts) for name, counts in order}

    if totals[0] <= 0:
        return None
    overall = usage(totals)
    return GenAIStats(
        **overall.model_dump(), by_model=ranked(by_model), by_provider=ranked(by_provider)
    )


class StatsService:
    def __init__(
        self, session: AsyncSession, tenant_id: UUID, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.stats = ActionStatsRepository(session, tenant_id)
        self.rollups = RollupStatsRepository(session, tenant_id)
        self.user_rollups = UserRollupStatsRepository(session, tenant_id)
        self.failure_rollups = FailureRollupStatsRepository(session, tenant_id)
        self.genai_rollups = GenaiRollupStatsRepository(session, tenant_id)
        self.clock = clock

    async def summary(self, f: ActionFilter) -> ActionStats:
        rows: list[Any] = []
        model_rows: list[Any] = []
        histogram = [0] * HISTOGRAM_BUCKETS
        rollups, raw = sorted_parts(plan(f, now=self.clock()))
        if rollups:
            rollup_rows, rollup_histogram = await self.rollups.breakdown(rollups)
            rows.extend(rollup_rows)
            _add(histogram, rollup_histogram)
            model_rows.extend(await self.genai_rollups.usage(rollups))
        if raw:
            rows.extend(await self.stats.breakdown(raw))
            _add(histogram, await self.stats.histogram(raw))
            model_rows.extend(await self.stats.genai(raw))
        overall = _Tally()
        tallies: dict[str, defaultdict[str, _Tally]] = {
            name: defaultdict(_Tally) for name in GROUPED
        }
        breakdowns: dict[str, Counter[str]] = defaultdict(Counter)
        for row in rows:
            overall.add(row.status, row.total, row.timed, row.time_sum)
            for name in ("action_type", "provider_name", "source", "service", "status"):
                if (value := getattr(row, name)) is not None:
                    breakdowns[name][value] += row.total
                    if name in tallies:
                        tallies[name][value].add(row.status, row.total, row.timed, row.time_sum)

        def detail(name: str) -> dict[str, TypeStats]:
            return {
                value: tallies[name][value].type_stats() for value in _by_count(breakdowns[name])
            }

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
            by_type=detail("action_type"),
            by_provider_stats=detail("provider_name"),
            by_service_stats=detail("service"),
            by_source_stats=detail("source"),
            genai=genai_stats(model_rows),
        )

    async def timeseries(self, f: ActionFilter, interval: Interval) -> Timeseries:
        """Buckets from the one holding `since` to the one holding the end of the range.

        The range defaults to the last hour (minute), day (hour) or 30 days (day) up to now.
        """
        seconds = INTERVAL_SECONDS[interval]
        now = self.clock()
        until = f.until or now
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
        periods = tuple(p for p in PERIODS if p <= seconds)
        found: defaultdict[int, _BucketSum] = defaultdict(_BucketSum)
        rollups, raw = sorted_parts(plan(ranged, periods, now=now))
        for row in await self.rollups.periods(rollups) if rollups else []:
            found[math.floor(row.start.timestamp() / seconds)].add(row)
        for row in await self.stats.buckets(raw, seconds) if raw else []:
            found[int(row.bucket)].add(row)
        buckets = []
        for index in range(first, last + 1):
            row = found.get(index)
            buckets.append(
                Bucket(
                    start=datetime.fromtimestamp(index * seconds, UTC),
                    total=row.total if row else 0,
                    successful=row.successful if row else 0,
                    failed=row.failed if row else 0,
                    average_execution_time_ms=_average(row.time_sum, row.timed) if row else None,
                )
            )
        return Timeseries(interval=interval, since=since, until=until, buckets=buckets)

    async def users(self, f: ActionFilter, limit: int) -> list[UserActivity]:
        """The most active users, from whole hours and days of user rollups and raw edges, or,
        for a range without a start that reaches now, from each user's all-time rollup.

        The cost is that of the range's users and periods, not of its rows (unless the filter
        names a field the user rollups do not keep, such as a status or a type).
        """
        now = self.clock()
        parts = plan(f, USER_PERIODS, now=now, covers=UserRollupStatsRepository.covers)
        if parts[0][0] is not None and f.since is None and (f.until is None or f.until >= now):
            parts = [(ALL_TIME, replace(f, until=None))]  # every row so far: one row per user
        rollups, raw = sorted_parts(parts)
        found: dict[str, _UserSum] = {}
        rows: list[Any] = []
        if rollups:  # the most active alone, unless raw edges may add to any user's count
            rows += await self.user_rollups.users(rollups, None if raw else limit)
        if raw:  # all users of the raw edges, unless raw rows answer alone
            rows += await self.stats.users(raw, None if rollups else limit)
        for row in rows:
            found.setdefault(row.user_id, _UserSum()).add(row)
        ranked = sorted(found.items(), key=lambda item: (-item[1].total, item[0]))[:limit]
        user_ids = [user_id for user_id, _ in ranked]
        newest: dict[str, Any] = {}
        latest: list[Any] = []
        if user_ids and rollups:
            latest += await self.user_rollups.last_actions(rollups, user_ids)
        if user_ids and raw:
            latest += await self.stats.last_actions(raw, user_ids)
        for row in latest:
            known = newest.get(row.user_id)
            if known is None or (row.created_at, row.id) > (known.created_at, known.id):
                newest[row.user_id] = row
        return [
            UserActivity(
                user_id=user_id,
                total_actions=tally.total,
                failed_actions=tally.failed,
                last_action_at=tally.last_action_at,
                last_action_id=newest[user_id].id if user_id in newest else None,
                last_action_type=newest[user_id].action_type if user_id in newest else None,
            )
            for user_id, tally in ranked
        ]

    async def failures(self, f: ActionFilter, limit: int) -> list[FailurePattern]:
        """Failure groups, most frequent first: by error_type, else by masked message.

        Read from whole minutes, hours and days of failure rollups and the raw edges of the
        range (or raw rows throughout when the filter names a field the rollups do not keep).
        """
        patterns: dict[tuple[str, str | None, str | None], _Pattern] = {}

        def collect(group: _Pattern) -> None:
            key = (group.action_type, group.error_type, group.pattern)
            if key in patterns:
                patterns[key].merge(group)
            else:
                patterns[key] = group

        def pattern(row: Any, error_type: str | None, masked: str | None) -> _Pattern:
            return _Pattern(
                row.action_type, error_type, masked, int(row.count), row.first_seen,
                row.last_seen, row.example_id, row.sample,
            )  # fmt: skip

        rollups, raw = sorted_parts(
            plan(f, now=self.clock(), covers=FailureRollupStatsRepository.covers)
        )
        for row in await self.failure_rollups.groups(rollups) if rollups else []:
            collect(pattern(row, row.error_type or None, row.pattern or None))
        if raw:
            for row in await self.stats.failure_groups(raw, typed=True):
                collect(pattern(row, row.detail, None))
            for row in await self.stats.failure_groups(raw, typed=False):
                masked = None if row.detail is None else mask_message(row.detail)
                collect(pattern(row, None, masked))
        ranked = sorted(patterns.values(), key=lambda p: (-p.count, -p.last_seen.timestamp()))
        return [
            FailurePattern(
                action_type=p.action_type,
                error_type=p.error_type,
                pattern=p.shown(),
                count=p.count,
                first_seen=p.first_seen,
                last_seen=p.last_seen,
                example_id=UUID(p.example_id),
            )
            for p in ranked[:limit]
        ]
