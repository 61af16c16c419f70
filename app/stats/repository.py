"""Statistics SQL over one tenant's actions: every figure is aggregated by the database.

`ActionStatsRepository` reads raw rows; `RollupStatsRepository` reads the minute, hourly and
daily rollups that stand for them (kept exact by every write: app/actions/rollups.py), so
ranges never scan rows but at their ragged edges; `UserRollupStatsRepository`,
`FailureRollupStatsRepository` and `GenaiRollupStatsRepository` do the same for the most
active users, the failure patterns and GenAI usage. app/stats/plan.py decides which parts of a
range each reads; app/stats/service.py adds the parts up.
All filter through the one filter map of app/actions/filters.py.
Percentiles of `execution_time_ms` come from a latency histogram either way.

Time buckets are whole multiples of the interval since the Unix epoch, so their boundaries are
UTC minutes, hours and days on both engines.
"""

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Table,
    and_,
    case,
    cast,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.filters import ActionFilter, conditions, covers
from app.actions.genai import usage_sql
from app.actions.models import (
    HISTOGRAM_BUCKETS,
    action_failure_rollups,
    action_genai_rollups,
    action_logs,
    action_rollups,
    action_user_rollups,
)
from app.actions.rollups import HISTOGRAM_COLUMNS, latency_bucket_sql
from app.actions.statuses import FAILED, SUCCESSFUL
from app.core.db import fetch_all

ACTIONS = action_logs
A = ACTIONS.c
IS_FAILED = A.status.in_(FAILED)
# Built once: 71 CASE branches or sums cost more to build per request than to run.
LATENCY_BUCKET = latency_bucket_sql(A.execution_time_ms).label("bucket")


class RollupRow(NamedTuple):
    action_type: str
    provider_name: str | None
    service: str | None
    source: str | None
    status: str
    total: int
    timed: int
    time_sum: int


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count(case((condition, 1)))


Filters = ActionFilter | Sequence[ActionFilter]  # one, or the raw edges of one (any_span)
Span = tuple[int | None, ActionFilter]  # a rollup period in seconds (None: raw rows), a filter
Spans = Sequence[tuple[int, ActionFilter]]  # whole periods of rollups


def any_span(
    table: Table, tenant_id: UUID, spans: Sequence[Span], time_column: str = "created_at"
) -> list[ColumnElement[bool]]:
    """One WHERE clause for several pieces of one filter that differ only in range and period.

    The statistics planner cuts a range into whole days, hours and minutes of rollups and raw
    edges; reading each piece in its own statement cost up to 18 round trips for a `stats`
    call. The filter's other conditions come once, then any of the pieces' ranges:
    `(period = 86400 AND start >= a AND start < b) OR (period = 3600 AND …)`, which both
    engines answer with one index range scan per piece (PostgreSQL: a BitmapOr).
    """
    assert spans, "at least one span"
    common = replace(spans[0][1], since=None, until=None)
    assert all(replace(f, since=None, until=None) == common for _, f in spans), "one filter"
    where = conditions(table, tenant_id, common, time_column)
    ranges = []
    for period, f in spans:
        bounds = ActionFilter(since=f.since, until=f.until)
        span = conditions(table, tenant_id, bounds, time_column)[1:]  # without the tenant
        if period is not None:
            span.append(table.c.period == period)
        ranges.append(and_(*span) if span else true())
    return [*where, or_(*ranges)]


class ActionStatsRepository:
    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _where(self, f: Filters) -> list[ColumnElement[bool]]:
        """One filter, or several that differ only in their ranges (the raw edges of one)."""
        if isinstance(f, ActionFilter):
            return conditions(ACTIONS, self.tenant_id, f)
        return any_span(ACTIONS, self.tenant_id, [(None, one) for one in f])

    @property
    def _postgresql(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    async def breakdown(self, f: Filters) -> Sequence[Any]:
        """Counts and timing sums per (type, provider, service, source, status)."""
        dimensions = (A.action_type, A.provider_name, A.service, A.source, A.status)
        query = (
            select(
                *dimensions,
                func.count().label("total"),
                func.count(A.execution_time_ms).label("timed"),
                func.sum(A.execution_time_ms).label("time_sum"),
            )
            .where(*self._where(f))
            .group_by(*dimensions)
        )
        return await fetch_all(self.session, query)

    async def histogram(self, f: Filters) -> list[int]:
        """The latency histogram of the matching rows (see app/actions/rollups.py)."""
        query = (
            select(LATENCY_BUCKET, func.count().label("n"))
            .where(*self._where(f), A.execution_time_ms.is_not(None))
            .group_by(LATENCY_BUCKET)
        )
        histogram = [0] * HISTOGRAM_BUCKETS
        for row in await fetch_all(self.session, query):
            histogram[row.bucket] += row.n
        return histogram

    def _bucket(self, seconds: int) -> ColumnElement[Any]:
        width = literal_column(str(int(seconds)), Integer)
        if self._postgresql:
            return func.floor(func.extract("epoch", A.created_at) / width)
        # SQLite keeps timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' text and rounds fractions to
        # milliseconds when it parses them, so only the whole seconds are parsed; the integer
        # division then floors exactly as PostgreSQL does.
        seconds_since_epoch = func.strftime("%s", func.substr(A.created_at, 1, 19))
        return cast(seconds_since_epoch, Integer) // width

    async def buckets(self, f: Filters, seconds: int) -> Sequence[Any]:
        """Per time bucket (its index since the epoch): total, successful, failed, timing."""
        bucket = self._bucket(seconds)
        query = (
            select(
                bucket.label("bucket"),
                func.count().label("total"),
                _count_if(A.status == SUCCESSFUL).label("successful"),
                _count_if(IS_FAILED).label("failed"),
                func.count(A.execution_time_ms).label("timed"),
                func.sum(A.execution_time_ms).label("time_sum"),
            )
            .where(*self._where(f))
            .group_by(bucket)
        )
        return await fetch_all(self.session, query)

    async def users(self, f: Filters, limit: int | None) -> Sequence[Any]:
        """The most active users (all of them without a limit): count, failures, last time."""
        total = func.count()
        query = (
            select(
                A.user_id,
                total.label("total"),
                _count_if(IS_FAILED).label("failed"),
                func.max(A.created_at).label("last_action_at"),
            )
            .where(*self._where(f), A.user_id.is_not(None))
            .group_by(A.user_id)
            .order_by(total.desc(), A.user_id)
            .limit(limit)
        )
        return await fetch_all(self.session, query)

    async def last_actions(self, f: Filters, user_ids: Sequence[str]) -> Sequence[Any]:
        """The latest action of each of these users: user_id, id, action_type."""
        rank = func.row_number().over(
            partition_by=A.user_id, order_by=(A.created_at.desc(), A.id.desc())
        )
        ranked = (
            select(A.user_id, A.id, A.action_type, A.created_at, rank.label("rank"))
            .where(*self._where(f), A.user_id.in_(user_ids))
            .subquery()
        )
        query = select(
            ranked.c.user_id, ranked.c.id, ranked.c.action_type, ranked.c.created_at
        ).where(ranked.c.rank == 1)
        return await fetch_all(self.session, query)

    async def genai(self, f: Filters) -> Sequence[Any]:
        """GenAI calls and token sums per model and provider (app/actions/genai.py)."""
        model, input_tokens, output_tokens = usage_sql(self.session.get_bind().dialect.name)
        query = (
            select(
                model.label("model"),
                A.provider_name,
                func.count().label("calls"),
                func.sum(input_tokens).label("input_tokens"),
                func.sum(output_tokens).label("output_tokens"),
            )
            .where(*self._where(f), model.is_not(None))
            .group_by(model, A.provider_name)
        )
        return await fetch_all(self.session, query)

    async def failure_groups(self, f: Filters, *, typed: bool) -> Sequence[Any]:
        """Failures grouped by type and error_type (typed) or by type and raw error message.

        Each group has its count, first and last time seen and its newest id as an example
        (ids are time-ordered, so the greatest is the newest).
        """
        detail = A.error_type if typed else A.error_message
        known = A.error_type.is_not(None) if typed else A.error_type.is_(None)
        query = (
            select(
                A.action_type,
                detail.label("detail"),
                func.max(A.error_message).label("sample"),
                func.count().label("count"),
                func.min(A.created_at).label("first_seen"),
                func.max(A.created_at).label("last_seen"),
                func.max(cast(A.id, String)).label("example_id"),
            )
            .where(*self._where(f), IS_FAILED, known)
            .group_by(A.action_type, detail)
        )
        return await fetch_all(self.session, query)


R = action_rollups.c
BREAKDOWN = (R.action_type, R.provider_name, R.service, R.source, R.status)
HISTOGRAM_SUMS = tuple(func.sum(R[name]) for name in HISTOGRAM_COLUMNS)


class RollupStatsRepository:
    """The same figures as ActionStatsRepository, read from whole hours or days of rollups.

    A filter is served here only when it uses rollup dimensions alone (`covers`); the range
    given to these methods must start and end on whole periods (None: unbounded).
    """

    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    @staticmethod
    def covers(f: ActionFilter) -> bool:
        """Whether the rollups keep every field that `f` filters on."""
        return covers(action_rollups, f, time_column="start")

    def _where(self, spans: Spans) -> list[ColumnElement[bool]]:
        return any_span(action_rollups, self.tenant_id, spans, time_column="start")

    async def breakdown(self, spans: Spans) -> tuple[list[Any], list[int]]:
        """Rows shaped as ActionStatsRepository.breakdown's, and the summed histogram.

        The histogram is summed by the database in its own one-row query: adding up 71
        counters per combination in Python would cost more than the second round trip.
        """
        where = self._where(spans)
        query = (
            select(
                *BREAKDOWN,
                func.sum(R.total).label("total"),
                func.sum(R.timed).label("timed"),
                func.sum(R.time_sum).label("time_sum"),
            )
            .where(*where)
            .group_by(*BREAKDOWN)
        )
        rows = []
        for row in await fetch_all(self.session, query):
            if row.total:
                rows.append(
                    RollupRow(
                        action_type=row.action_type,
                        provider_name=row.provider_name or None,
                        service=row.service or None,
                        source=row.source or None,
                        status=row.status,
                        total=int(row.total),
                        timed=int(row.timed),
                        time_sum=int(row.time_sum),
                    )
                )
        sums = select(*HISTOGRAM_SUMS).where(*where)
        histogram = [int(count or 0) for count in (await fetch_all(self.session, sums))[0]]
        return rows, histogram

    async def periods(self, spans: Spans) -> Sequence[Any]:
        """Per minute, hour or day: its start, total, successful, failed, timing count and sum.

        The spans' ranges do not overlap, so each start belongs to one period."""
        successful = func.sum(case((R.status == SUCCESSFUL, R.total), else_=0))
        failed = func.sum(case((R.status.in_(FAILED), R.total), else_=0))
        query = (
            select(
                R.start,
                func.sum(R.total).label("total"),
                successful.label("successful"),
                failed.label("failed"),
                func.sum(R.timed).label("timed"),
                func.sum(R.time_sum).label("time_sum"),
            )
            .where(*self._where(spans))
            .group_by(R.start)
        )
        return await fetch_all(self.session, query)


U = action_user_rollups.c


class UserRollupStatsRepository:
    """Per-user figures from whole hours or days of user rollups (see RollupStatsRepository)."""

    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    @staticmethod
    def covers(f: ActionFilter) -> bool:
        """Whether the user rollups keep every field that `f` filters on (time, user)."""
        return covers(action_user_rollups, f, time_column="start")

    def _where(self, spans: Spans) -> list[ColumnElement[bool]]:
        where = any_span(action_user_rollups, self.tenant_id, spans, time_column="start")
        return [*where, U.total > 0]

    async def users(self, spans: Spans, limit: int | None = None) -> Sequence[Any]:
        """The users of the range: count, failures and time of the last action; all of them,
        or (`limit`) the most active, ranked as `stats/users` ranks them."""
        total = func.sum(U.total).label("total")
        query = (
            select(
                U.user_id,
                total,
                func.sum(U.failed).label("failed"),
                func.max(U.last_action_at).label("last_action_at"),
            )
            .where(*self._where(spans))
            .group_by(U.user_id)
        )
        if limit is not None:
            query = query.order_by(total.desc(), U.user_id).limit(limit)
        return await fetch_all(self.session, query)

    async def last_actions(self, spans: Spans, user_ids: Sequence[str]) -> Sequence[Any]:
        """The newest action of these users in each period: user_id, id, action_type, time."""
        query = select(
            U.user_id,
            U.last_action_id.label("id"),
            U.last_action_type.label("action_type"),
            U.last_action_at.label("created_at"),
        ).where(*self._where(spans), U.user_id.in_(user_ids))
        return await fetch_all(self.session, query)


F = action_failure_rollups.c


class FailureRollupStatsRepository:
    """Failure groups from whole minutes, hours or days of failure rollups."""

    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    @staticmethod
    def covers(f: ActionFilter) -> bool:
        """Whether the failure rollups keep every field that `f` filters on."""
        return covers(action_failure_rollups, f, time_column="start")

    async def groups(self, spans: Spans) -> Sequence[Any]:
        """Per type, error_type ('' for none) and pattern ('' for none): count, first and last
        seen, the newest id (as text, like ActionStatsRepository.failure_groups) and sample."""
        where = any_span(action_failure_rollups, self.tenant_id, spans, time_column="start")
        query = (
            select(
                F.action_type,
                F.error_type,
                func.max(F.pattern).label("pattern"),
                func.sum(F.count).label("count"),
                func.min(F.first_seen).label("first_seen"),
                func.max(F.last_seen).label("last_seen"),
                func.max(cast(F.example_id, String)).label("example_id"),
                func.max(F.sample).label("sample"),
            )
            .where(*where, F.count > 0)
            .group_by(F.action_type, F.error_type, F.pattern_key)
        )
        return await fetch_all(self.session, query)


G = action_genai_rollups.c


class GenaiRollupStatsRepository:
    """GenAI calls and token sums from whole minutes, hours or days of GenAI rollups (they keep
    the dimensions of the action rollups, so `RollupStatsRepository.covers` holds for them)."""

    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def usage(self, spans: Spans) -> Sequence[Any]:
        """Per model and provider ('' for none): calls, input and output tokens."""
        where = any_span(action_genai_rollups, self.tenant_id, spans, time_column="start")
        query = (
            select(
                G.model,
                G.provider_name,
                func.sum(G.calls).label("calls"),
                func.sum(G.input_tokens).label("input_tokens"),
                func.sum(G.output_tokens).label("output_tokens"),
            )
            .where(*where)
            .group_by(G.model, G.provider_name)
        )
        return await fetch_all(self.session, query)
