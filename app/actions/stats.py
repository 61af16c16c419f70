"""Statistics SQL over one tenant's actions: every figure is aggregated by the database.

Percentiles of `execution_time_ms` use the nearest-rank method: the p-th percentile is the
smallest recorded value such that at least p% of the timed rows are at or below it, so it is
always an observed value. PostgreSQL computes exactly that with `percentile_disc`; SQLite, which
has no ordered-set aggregates, numbers the ordered rows with window functions and keeps the first
whose rank reaches p% of the count (in integer arithmetic). Both give the same numbers.

Time buckets are whole multiples of the interval since the Unix epoch, so their boundaries are
UTC minutes, hours and days on both engines.
"""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Integer, String, case, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.filters import ActionFilter
from app.actions.models import ActionLog
from app.actions.repository import filter_conditions
from app.actions.statuses import FAILED

PERCENTILES = (50, 95, 99)
A = ActionLog
IS_FAILED = A.status.in_(FAILED)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count(case((condition, 1)))


class ActionStatsRepository:
    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _where(self, f: ActionFilter) -> list[ColumnElement[bool]]:
        return filter_conditions(self.tenant_id, f)

    @property
    def _postgresql(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    async def breakdown(self, f: ActionFilter) -> Sequence[Any]:
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
        return (await self.session.execute(query)).all()

    async def percentiles(self, f: ActionFilter) -> dict[int, int | None]:
        """p50, p95 and p99 of execution_time_ms (nearest rank), None when nothing is timed."""
        if self._postgresql:
            query = select(
                *(
                    func.percentile_disc(p / 100).within_group(A.execution_time_ms)
                    for p in PERCENTILES
                )
            ).where(*self._where(f))
        else:
            ranked = (
                select(
                    A.execution_time_ms.label("ms"),
                    func.row_number().over(order_by=A.execution_time_ms).label("rank"),
                    func.count().over().label("n"),
                )
                .where(*self._where(f), A.execution_time_ms.is_not(None))
                .subquery()
            )
            query = select(
                *(
                    func.min(case((ranked.c.rank * 100 >= ranked.c.n * p, ranked.c.ms)))
                    for p in PERCENTILES
                )
            )
        values = (await self.session.execute(query)).one()
        return {p: None if v is None else int(v) for p, v in zip(PERCENTILES, values, strict=True)}

    def _bucket(self, seconds: int) -> ColumnElement[Any]:
        width = literal_column(str(int(seconds)), Integer)
        if self._postgresql:
            return func.floor(func.extract("epoch", A.created_at) / width)
        # SQLite keeps timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' text and rounds fractions to
        # milliseconds when it parses them, so only the whole seconds are parsed; the integer
        # division then floors exactly as PostgreSQL does.
        seconds_since_epoch = func.strftime("%s", func.substr(A.created_at, 1, 19))
        return cast(seconds_since_epoch, Integer) // width

    async def buckets(self, f: ActionFilter, seconds: int) -> Sequence[Any]:
        """Per time bucket (its index since the epoch): total, failed, timing count and sum."""
        bucket = self._bucket(seconds)
        query = (
            select(
                bucket.label("bucket"),
                func.count().label("total"),
                _count_if(IS_FAILED).label("failed"),
                func.count(A.execution_time_ms).label("timed"),
                func.sum(A.execution_time_ms).label("time_sum"),
            )
            .where(*self._where(f))
            .group_by(bucket)
        )
        return (await self.session.execute(query)).all()

    async def users(self, f: ActionFilter, limit: int) -> Sequence[Any]:
        """The most active users: count, failures and time of their last action."""
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
        return (await self.session.execute(query)).all()

    async def last_actions(self, f: ActionFilter, user_ids: Sequence[str]) -> Sequence[Any]:
        """The latest action of each of these users: user_id, id, action_type."""
        rank = func.row_number().over(
            partition_by=A.user_id, order_by=(A.created_at.desc(), A.id.desc())
        )
        ranked = (
            select(A.user_id, A.id, A.action_type, rank.label("rank"))
            .where(*self._where(f), A.user_id.in_(user_ids))
            .subquery()
        )
        query = select(ranked.c.user_id, ranked.c.id, ranked.c.action_type).where(
            ranked.c.rank == 1
        )
        return (await self.session.execute(query)).all()

    async def failure_groups(self, f: ActionFilter, *, typed: bool) -> Sequence[Any]:
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
                func.count().label("count"),
                func.min(A.created_at).label("first_seen"),
                func.max(A.created_at).label("last_seen"),
                func.max(cast(A.id, String)).label("example_id"),
            )
            .where(*self._where(f), IS_FAILED, known)
            .group_by(A.action_type, detail)
        )
        return (await self.session.execute(query)).all()
