"""SQL for one tenant's action logs: the insert path, lookups and keyset-paged listings.

A repository is built for a tenant and adds the tenant filter to every query itself.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, ColumnElement, Row, Select, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.actions import rollups
from app.actions.filters import ActionFilter
from app.actions.models import ActionLog
from app.actions.rollups import RollupContribution
from app.actions.schemas import SUMMARY_FIELDS
from app.actions.statuses import FAILED
from app.core.db import fetch_all, json_text
from app.core.pagination import Cursor, Order, after_cursor
from app.streams import events as stream_events

# Queries use the table's columns: the ORM's attributes cost more to build with and to read.
COLUMNS = ActionLog.__table__.c
SUMMARY_COLUMNS = tuple(COLUMNS[name] for name in SUMMARY_FIELDS)
_COLUMN_OF = {"metadata_": "metadata"}  # attribute names that differ from their column's
_ATTRIBUTE_OF = {column: name for name, column in _COLUMN_OF.items()}


def filter_conditions(tenant_id: UUID, f: ActionFilter) -> list[ColumnElement[bool]]:
    """The WHERE clause of a filtered query over one tenant's actions."""
    a = COLUMNS
    conditions: list[ColumnElement[bool]] = [a.tenant_id == tenant_id]
    for column, values in (
        (a.action_type, f.action_types),
        (a.status, f.statuses),
        (a.provider_name, f.providers),
    ):
        if values:
            conditions.append(column.in_(values))
    for column, value in (
        (a.service, f.service),
        (a.source, f.source),
        (a.user_id, f.user_id),
        (a.session_id, f.session_id),
        (a.correlation_id, f.correlation_id),
        (a.parent_id, f.parent_id),
    ):
        if value is not None:
            conditions.append(column == value)
    if f.since is not None:
        conditions.append(a.created_at >= f.since)
    if f.until is not None:
        conditions.append(a.created_at < f.until)
    if f.min_duration_ms is not None:
        conditions.append(a.execution_time_ms >= f.min_duration_ms)
    if f.max_duration_ms is not None:
        conditions.append(a.execution_time_ms <= f.max_duration_ms)
    if f.q:
        # lower() on both sides and escaped wildcards: the same match on PostgreSQL and SQLite
        # (SQLite's lower() folds ASCII letters only, so other letters match case-sensitively).
        needle = f.q.lower()
        conditions.append(
            or_(
                func.lower(a.action_name).contains(needle, autoescape=True),
                func.lower(a.error_message).contains(needle, autoescape=True),
            )
        )
    return conditions


async def insert_actions(connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert complete action rows (of any tenants) and add them to the rollups.

    Every insert of actions goes through here, so the rollups never miss a row. On PostgreSQL
    the rows go in with `COPY`, the fastest way in; elsewhere with one multi-row INSERT. Both
    run on the connection directly: Core statements need none of the ORM's per-row work.
    """
    if not rows:
        return
    changes = rollups.deltas((row, 1) for row in rows)
    if connection.dialect.name == "postgresql":
        # An acknowledged row must survive a crash whatever the server's default. The SET
        # also opens the transaction that the COPY joins, so the rows go in before the rollup
        # rows are locked: concurrent writers then wait on each other only for the upsert and
        # the commit.
        await connection.exec_driver_sql("SET LOCAL synchronous_commit TO on")
        await _copy_actions(connection, rows)
    else:
        values = [{_COLUMN_OF.get(k, k): v for k, v in row.items()} for row in rows]
        await connection.execute(insert(ActionLog.__table__), values)
    await rollups.apply(connection, changes)
    await stream_events.record_actions(connection, rows)


_COPY_COLUMNS = tuple(column.name for column in ActionLog.__table__.columns)
_COPY_ATTRIBUTES = tuple(_ATTRIBUTE_OF.get(name, name) for name in _COPY_COLUMNS)
_JSON_POSITIONS = tuple(
    i for i, column in enumerate(ActionLog.__table__.columns) if isinstance(column.type, JSON)
)


def _record(row: dict[str, Any]) -> tuple[Any, ...]:
    # The driver's JSONB codec takes JSON text, as the ORM's bind step would have produced.
    values = [row.get(name) for name in _COPY_ATTRIBUTES]
    for position in _JSON_POSITIONS:
        if values[position] is not None:
            values[position] = json_text(values[position])
    return tuple(values)


async def _copy_actions(connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """`COPY … FROM STDIN` (binary) on the connection, inside its transaction."""
    driver = (await connection.get_raw_connection()).driver_connection
    records = [_record(row) for row in rows]
    await driver.copy_records_to_table("action_logs", records=records, columns=_COPY_COLUMNS)


def _ordered(query: Select[Any], order: Order) -> Select[Any]:
    if order == "asc":
        return query.order_by(COLUMNS.created_at.asc(), COLUMNS.id.asc())
    return query.order_by(COLUMNS.created_at.desc(), COLUMNS.id.desc())


class ActionRepository:
    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def insert(self, rows: list[dict[str, Any]]) -> None:
        """The write path: one multi-row INSERT of fully built rows, and rollups."""
        for row in rows:
            row["tenant_id"] = self.tenant_id
        await insert_actions(await self.session.connection(), rows)

    async def recount(self, before: RollupContribution, after: ActionLog) -> None:
        """Move a changed action's contribution in the rollups from `before` to its new one."""
        changes = [(before, -1), (rollups.contribution(after), 1)]
        await rollups.apply(await self.session.connection(), rollups.deltas(changes))

    async def purge_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` of the oldest actions created before `cutoff`, and rollups."""
        contributing = [getattr(ActionLog, name) for name in rollups.CONTRIBUTING]
        doomed = (
            await self.session.execute(
                select(ActionLog.id, *contributing)
                .where(ActionLog.tenant_id == self.tenant_id, ActionLog.created_at < cutoff)
                .order_by(ActionLog.created_at, ActionLog.id)
                .limit(limit)
            )
        ).all()
        if not doomed:
            return 0
        await self.session.execute(
            delete(ActionLog).where(
                ActionLog.tenant_id == self.tenant_id, ActionLog.id.in_([r.id for r in doomed])
            )
        )
        connection = await self.session.connection()
        await rollups.apply(connection, rollups.deltas((row._asdict(), -1) for row in doomed))
        return len(doomed)

    async def get(self, action_id: UUID, *, for_update: bool = False) -> ActionLog | None:
        query = select(ActionLog).where(
            ActionLog.tenant_id == self.tenant_id, ActionLog.id == action_id
        )
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def flush(self) -> None:
        await self.session.flush()

    async def announce(self, action: ActionLog) -> None:
        """Put a changed action on the live stream, in this transaction."""
        entry = stream_events.action_entry(action)
        await stream_events.record(await self.session.connection(), self.tenant_id, [entry])

    def _page_query(
        self,
        query: Select[Any],
        f: ActionFilter,
        *,
        limit: int,
        order: Order,
        cursor: Cursor | None = None,
        skip: int = 0,
    ) -> Select[Any]:
        query = query.where(*filter_conditions(self.tenant_id, f))
        if cursor is not None:
            query = query.where(after_cursor(COLUMNS.created_at, COLUMNS.id, cursor, order))
        elif skip:
            query = query.offset(skip)
        return _ordered(query, order).limit(limit)

    async def list_summaries(
        self,
        f: ActionFilter,
        *,
        limit: int,
        order: Order,
        cursor: Cursor | None = None,
        skip: int = 0,
    ) -> Sequence[Row[Any]]:
        """A page of summary rows (no payload columns are read)."""
        query = self._page_query(
            select(*SUMMARY_COLUMNS), f, limit=limit, order=order, cursor=cursor, skip=skip
        )
        return await fetch_all(self.session, query)

    async def list_full(
        self, f: ActionFilter, *, limit: int, order: Order, cursor: Cursor | None = None
    ) -> Sequence[ActionLog]:
        """A page of complete records, for export."""
        query = self._page_query(select(ActionLog), f, limit=limit, order=order, cursor=cursor)
        return (await self.session.scalars(query)).all()

    async def recent_failures(self, since: datetime, limit: int) -> Sequence[Row[Any]]:
        f = ActionFilter(statuses=FAILED, since=since)
        return await self.list_summaries(f, limit=limit, order="desc")
