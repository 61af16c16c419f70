"""Rollups rebuilt from the rows: after a bulk load, direct SQL changes, or a migration that
adds a rollup (app/actions/rollups.py says what each rollup holds; every write keeps them
exact without this). `rebuild` recomputes one tenant's rollups in the session's transaction;
the statements are also what the migrations that introduced each rollup ran over every tenant.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Text,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions import genai
from app.actions.models import (
    HISTOGRAM_BUCKETS,
    ROLLUP_DIMENSIONS,
    action_failure_rollups,
    action_genai_rollups,
    action_logs,
    action_rollups,
    action_user_rollups,
)
from app.actions.rollups import (
    ALL_TIME,
    COUNTERS,
    DAY,
    HOUR,
    KEY_COLUMNS,
    MINUTE,
    PERIODS,
    USER_KEY_COLUMNS,
    USER_PERIODS,
    Changes,
    failure_group,
    failure_upsert_rows,
    latency_bucket_sql,
)
from app.actions.statuses import FAILED

UNITS = {MINUTE: "minute", HOUR: "hour", DAY: "day"}
SQLITE_STARTS = {
    MINUTE: "%Y-%m-%d %H:%M:00.000000",
    HOUR: "%Y-%m-%d %H:00:00.000000",
    DAY: "%Y-%m-%d 00:00:00.000000",
}


def _start_sql(dialect: str, column: Any, period: int) -> ColumnElement[Any]:
    """The start of the UTC minute, hour or day of a timestamp column, as the rollups store it
    (for ALL_TIME: the epoch)."""
    if period == ALL_TIME:  # a constant of the column's type, not a parameter of none
        if dialect == "postgresql":
            return literal_column("TIMESTAMPTZ '1970-01-01 00:00:00+00'")
        return literal_column("'1970-01-01 00:00:00.000000'")
    if dialect == "postgresql":
        truncated = func.date_trunc(UNITS[period], func.timezone("UTC", column))
        return func.timezone("UTC", truncated)
    return func.strftime(SQLITE_STARTS[period], column)


async def rebuild(session: AsyncSession, tenant_id: UUID) -> None:
    """Recompute a tenant's rollups from its rows (after a bulk load or direct SQL changes)."""
    dialect = session.get_bind().dialect.name
    tables = (action_rollups, action_user_rollups, action_failure_rollups, action_genai_rollups)
    for table in tables:
        await session.execute(delete(table).where(table.c.tenant_id == tenant_id))
    for period in USER_PERIODS:
        await session.execute(rebuild_users_statement(dialect, tenant_id, period))
    for period in PERIODS:
        await session.execute(rebuild_statement(dialect, period, tenant_id))
        await session.execute(genai_rebuild_statement(dialect, period, tenant_id))
        groups = await session.execute(failure_groups_query(dialect, period, tenant_id))
        rows = failure_rollup_rows(period, groups)
        for chunk in range(0, len(rows), 1000):
            await session.execute(insert(action_failure_rollups), rows[chunk : chunk + 1000])


def genai_rebuild_statement(dialect: str, period: int, tenant_id: UUID) -> Any:
    """The GenAI rollups of one period of a tenant, from its rows."""
    start = _start_sql(dialect, action_logs.c.created_at, period)
    return genai.rebuild_statement(dialect, period, start, tenant_id)


def failure_groups_query(dialect: str, period: int, tenant_id: UUID | None) -> Any:
    """Failed rows grouped per period, combination, error_type and raw message (None: every
    tenant): what `failure_rollup_rows` turns into failure rollups once messages are masked."""
    a = action_logs.c
    start = _start_sql(dialect, a.created_at, period)
    dimensions = [func.coalesce(a[name], "") for name in ROLLUP_DIMENSIONS[:-1]]
    grouping = (a.tenant_id, start, *dimensions, a.status, a.error_type, a.error_message)
    query = select(
        a.tenant_id,
        start.label("start"),
        *(
            value.label(name)
            for value, name in zip(dimensions, ROLLUP_DIMENSIONS[:-1], strict=True)
        ),
        a.status,
        a.error_type,
        a.error_message,
        func.count().label("count"),
        func.min(a.created_at).label("first_seen"),
        func.max(a.created_at).label("last_seen"),
        func.max(cast(a.id, Text)).label("example_id"),
        func.max(a.error_message).label("sample"),
    ).where(a.status.in_(FAILED))
    if tenant_id is not None:
        query = query.where(a.tenant_id == tenant_id)
    return query.group_by(*grouping)


def failure_rollup_rows(period: int, groups: Iterable[Any]) -> list[dict[str, Any]]:
    """Failure rollup rows of one period from `failure_groups_query`'s groups."""
    changes = Changes()
    for g in groups:
        error_type, pattern = failure_group(g.error_type, g.error_message)
        key = (g.tenant_id, period, _as_datetime(g.start), g.action_type, g.provider_name,
               g.service, g.source, g.status)  # fmt: skip
        example = UUID(g.example_id)
        first, last = _as_datetime(g.first_seen), _as_datetime(g.last_seen)
        changes.add_failures([key], error_type, pattern, g.count, first, last, example, g.sample)
    return failure_upsert_rows(changes.failures)


def _as_datetime(value: Any) -> datetime:
    """A timestamp as read back from either engine (SQLite's strftime gives text)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def rebuild_users_statement(dialect: str, tenant_id: UUID, period: int) -> Any:
    """Each user's count, failures and newest action per period, by window functions."""
    a = action_logs.c
    start = _start_sql(dialect, a.created_at, period)
    window = (a.tenant_id, start, a.user_id)
    ranked = (
        select(
            a.tenant_id,
            literal(period).label("period"),
            start.label("start"),
            a.user_id,
            func.count().over(partition_by=window).label("total"),
            func.sum(case((a.status.in_(FAILED), 1), else_=0))
            .over(partition_by=window)
            .label("failed"),
            a.created_at,
            a.id,
            a.action_type,
            func.row_number()
            .over(partition_by=window, order_by=(a.created_at.desc(), a.id.desc()))
            .label("rank"),
        )
        .where(a.tenant_id == tenant_id, a.user_id.is_not(None))
        .subquery()
    )
    r = ranked.c
    newest = select(
        r.tenant_id, r.period, r.start, r.user_id, r.total, r.failed, r.created_at, r.id,
        r.action_type,
    ).where(r.rank == 1)  # fmt: skip
    columns = [*USER_KEY_COLUMNS, "total", "failed", "last_action_at", "last_action_id",
               "last_action_type"]  # fmt: skip
    return insert(action_user_rollups).from_select(columns, newest)


def rebuild_statement(dialect: str, period: int, tenant_id: UUID | None) -> Any:
    """Counts per key and latency bucket first, then one row per key with its histogram
    (of one tenant, or of every tenant: None).

    Grouping by the bucket first evaluates its 71-branch CASE once per row; spreading a
    per-row bucket over 71 histogram sums would evaluate it 71 times per row (the engines
    inline a subquery's expression into each use), which made a rebuild of millions of rows
    take minutes.
    """
    a = action_logs.c
    start = _start_sql(dialect, a.created_at, period)
    bucket = latency_bucket_sql(a.execution_time_ms)
    dimensions = [func.coalesce(a[name], "") for name in ROLLUP_DIMENSIONS[:-1]]
    grouped = (
        select(
            a.tenant_id,
            literal(period).label("period"),
            start.label("start"),
            *(
                value.label(name)
                for value, name in zip(dimensions, ROLLUP_DIMENSIONS[:-1], strict=True)
            ),
            a.status,
            bucket.label("bucket"),
            func.count().label("n"),
            func.count(a.execution_time_ms).label("timed"),
            func.coalesce(func.sum(a.execution_time_ms), 0).label("time_sum"),
        )
        .where(*([] if tenant_id is None else [a.tenant_id == tenant_id]))
        .group_by(a.tenant_id, start, *dimensions, a.status, bucket)
        .subquery()
    )
    g = grouped.c
    keys = [g[name] for name in KEY_COLUMNS]
    aggregate = select(
        *keys,
        func.sum(g.n),
        func.sum(g.timed),
        func.sum(g.time_sum),
        *(
            func.nullif(func.sum(case((g.bucket == i, g.timed), else_=0)), 0)
            for i in range(HISTOGRAM_BUCKETS)
        ),
    ).group_by(*keys)
    return insert(action_rollups).from_select(list(KEY_COLUMNS + COUNTERS), aggregate)
