"""SQL for one tenant's action logs: the insert path, lookups and keyset-paged listings.

A repository is built for a tenant and adds the tenant filter to every query itself.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, Select, delete, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.actions import rollups
from app.actions.filters import ActionFilter, conditions
from app.actions.models import ACTION_COLUMNS, ActionLog, action_logs
from app.actions.rollups import RollupContribution
from app.actions.schemas import SUMMARY_FIELDS, Sort
from app.actions.statuses import FAILED
from app.core.db import fetch_all, insert_values
from app.core.pagination import Cursor, DurationCursor, Order, after_key
from app.core.tenancy import set_tenant
from app.streamlog import record as streamlog

# Queries use the table's columns: the ORM's attributes cost more to build with and to read.
ACTIONS = action_logs
COLUMNS = ACTIONS.c
SUMMARY_COLUMNS = tuple(COLUMNS[name] for name in SUMMARY_FIELDS)


TenantRows = tuple[UUID, Sequence[dict[str, Any]]]


def stream_entry(action: dict[str, Any] | ActionLog) -> dict[str, Any]:
    """The live-stream event of an action (a row or an ORM object): its summary, as listed."""
    values: dict[str, Any] = (
        action if isinstance(action, dict) else {n: getattr(action, n) for n in _STREAMED}
    )
    summary = {name: values.get(name) for name in SUMMARY_FIELDS}
    fields = {name: values.get(name) for name in streamlog.FILTER_FIELDS}
    return streamlog.entry("action", values["id"], streamlog.as_json(summary), **fields)


_STREAMED = frozenset(SUMMARY_FIELDS) | frozenset(streamlog.FILTER_FIELDS)


async def insert_actions(
    connection: AsyncConnection, writes: Sequence[TenantRows], *, announce_now: bool = True
) -> list[UUID]:
    """Insert action rows, each stamped with the tenant it is written for, and their rollups.

    Every insert of actions goes through here, so the rollups never miss a row, and every row
    gets the `tenant_id` of its write, whatever it held. `writes` may hold several tenants'
    rows (a group commit): each tenant's rows and rollups go in under that tenant's row-level
    security setting (app/core/tenancy.py), tenant after tenant in one order, so that
    concurrent writers lock rollup rows in the same order. Each row is its own stream event:
    it takes the tenant's next stream number (`stream_seq`); no copy goes to `stream_events`.
    The rows go in with one multi-row INSERT per tenant on the connection directly (none of
    the ORM's per-row work), their values as parameters (`insert_values`): COPY, or an
    INSERT … SELECT from a set-returning function (which a distributed PostgreSQL runs as a
    COPY), is refused on a table under row-level security.
    Returns the tenants written for; with `announce_now=False` the caller announces them on
    the stream after its commit (`streamlog.announce`).
    """
    by_tenant: dict[UUID, list[dict[str, Any]]] = {}
    for tenant_id, tenant_rows in writes:
        for row in tenant_rows:
            row["tenant_id"] = tenant_id
        if tenant_rows:
            by_tenant.setdefault(tenant_id, []).extend(tenant_rows)
    if not by_tenant:
        return []
    ordered = sorted(by_tenant, key=lambda t: t.bytes)
    for tenant_id in ordered:
        rows = by_tenant[tenant_id]
        # durable: an acknowledged row must survive a crash whatever the server's default
        await set_tenant(connection, tenant_id, durable=True)
        # each row is its own stream event (app/streams/events.py): numbered, not copied
        first = await streamlog.number(connection, tenant_id, len(rows))
        for offset, row in enumerate(rows):
            row["stream_seq"] = first + offset
        await _insert_rows(connection, rows)
        await rollups.apply(connection, rollups.deltas((row, 1) for row in rows))
    await streamlog.mark(connection, ordered, announce_now=announce_now)
    return ordered


async def _insert_rows(connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await insert_values(connection, action_logs, ACTION_COLUMNS, rows)


@dataclass(frozen=True)
class StreamVersion:
    """An action's stream event as its row holds it: number, time, event."""

    seq: int
    at: datetime
    event: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """A stored action id of the tenant, and the fingerprint of the body it was recorded from."""

    request_hash: str | None


async def find_claims(
    connection: AsyncConnection, tenant_id: UUID, ids: Sequence[UUID]
) -> dict[UUID, Claim]:
    """The tenant's stored actions among `ids`.

    Actions are keyed by (tenant_id, id), so an id is unique per tenant: another tenant's row
    with the same id is no concern of this one (and stays invisible to it). Keys that hold the
    tenant are what a database sharded by tenant (Citus) can enforce.
    """
    query = select(COLUMNS.id, COLUMNS.request_hash).where(
        COLUMNS.tenant_id == tenant_id, COLUMNS.id.in_(list(ids))
    )
    rows = (await connection.execute(query)).all()
    return {row.id: Claim(row.request_hash) for row in rows}


async def find_record(
    connection: AsyncConnection, tenant_id: UUID, action_id: UUID
) -> dict[str, Any] | None:
    """One of the tenant's actions as a plain row (every column), or None."""
    query = select(*ACTIONS.columns).where(COLUMNS.tenant_id == tenant_id, COLUMNS.id == action_id)
    row = (await connection.execute(query)).one_or_none()
    return None if row is None else dict(row._mapping)


SORT_KEYS: dict[str, tuple[Any, Any]] = {
    "created_at": (COLUMNS.created_at, COLUMNS.id),
    "execution_time_ms": (COLUMNS.execution_time_ms, COLUMNS.id),
}
PageCursor = Cursor | DurationCursor


def _ordered(query: Select[Any], order: Order, sort: Sort = "created_at") -> Select[Any]:
    first, second = SORT_KEYS[sort]
    if order == "asc":
        return query.order_by(first.asc(), second.asc())
    return query.order_by(first.desc(), second.desc())


def _key(cursor: PageCursor) -> tuple[Any, Any]:
    if isinstance(cursor, DurationCursor):
        return cursor.execution_time_ms, cursor.id
    return cursor.created_at, cursor.id


class ActionRepository:
    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def recount(self, before: RollupContribution, after: ActionLog) -> None:
        """Move a changed action's contribution in the rollups from `before` to its new one."""
        changes = [(before, -1), (rollups.contribution(after), 1)]
        await rollups.apply(await self.session.connection(), rollups.deltas(changes))

    async def oldest_before(self, cutoff: datetime, limit: int) -> Sequence[Row[Any]]:
        """Up to `limit` of the oldest actions created before `cutoff`, every column."""
        return await fetch_all(
            self.session,
            select(ACTIONS)
            .where(COLUMNS.tenant_id == self.tenant_id, COLUMNS.created_at < cutoff)
            .order_by(COLUMNS.created_at, COLUMNS.id)
            .limit(limit),
        )

    async def delete_unchanged(self, versions: dict[UUID, datetime]) -> int | None:
        """Delete these actions, as of these `updated_at` versions, and their rollups.

        None (and nothing to commit) when one of them changed or vanished since it was read:
        the caller rolls back. The rollups lose exactly what the deleted rows counted for,
        read from the rows as they are deleted. Their stream events that the stream still
        holds (a destination has yet to deliver them) are kept in `stream_events`.
        """
        returned = {"id", "updated_at", "stream_seq", *rollups.CONTRIBUTING, *_STREAMED}
        result = await self.session.execute(
            delete(ACTIONS)
            .where(COLUMNS.tenant_id == self.tenant_id, COLUMNS.id.in_(list(versions)))
            .returning(*(COLUMNS[name] for name in sorted(returned)))
        )
        deleted = [row._asdict() for row in result]
        if len(deleted) != len(versions) or any(
            versions.get(row["id"]) != row["updated_at"] for row in deleted
        ):
            return None
        connection = await self.session.connection()
        await rollups.apply(connection, rollups.deltas((row, -1) for row in deleted))
        # an action's row is its stream event: one the stream still holds stays in it
        await streamlog.keep_deleted(
            connection, self.tenant_id, deleted, "updated_at", stream_entry
        )
        return len(deleted)

    async def get(self, action_id: UUID, *, for_update: bool = False) -> ActionLog | None:
        query = select(ActionLog).where(
            ActionLog.tenant_id == self.tenant_id, ActionLog.id == action_id
        )
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def flush(self) -> None:
        await self.session.flush()

    @staticmethod
    def seen(action: ActionLog) -> StreamVersion | None:
        """The version of the action that is its row's stream event (taken before it changes);
        None when its events are all in `stream_events` (recorded before numbers were kept on
        the row)."""
        if action.stream_seq is None:
            return None
        return StreamVersion(action.stream_seq, action.updated_at, stream_entry(action))

    async def renumber(self, action: ActionLog, seen: StreamVersion | None) -> None:
        """Put a changing action on the live stream, in this transaction (before its change is
        flushed): the version the stream has seen stays an event under its number, and the row
        takes the tenant's next number for the new one."""
        connection = await self.session.connection()
        if seen is not None:
            await streamlog.keep(connection, self.tenant_id, [(seen.seq, seen.at, seen.event)])
        action.stream_seq = await streamlog.number(connection, self.tenant_id, 1)
        await streamlog.mark(connection, [self.tenant_id])

    def page_query(
        self,
        query: Select[Any],
        f: ActionFilter,
        *,
        limit: int,
        order: Order,
        cursor: PageCursor | None = None,
        skip: int = 0,
        sort: Sort = "created_at",
    ) -> Select[Any]:
        query = query.where(*conditions(ACTIONS, self.tenant_id, f))
        if sort == "execution_time_ms":
            query = query.where(COLUMNS.execution_time_ms.is_not(None))  # timed actions only
        if cursor is not None:
            query = query.where(after_key(SORT_KEYS[sort], _key(cursor), order))
        elif skip:
            query = query.offset(skip)
        return _ordered(query, order, sort).limit(limit)

    async def list_summaries(
        self,
        f: ActionFilter,
        *,
        limit: int,
        order: Order,
        cursor: PageCursor | None = None,
        skip: int = 0,
        sort: Sort = "created_at",
    ) -> Sequence[Row[Any]]:
        """A page of summary rows (no payload columns are read)."""
        query = self.page_query(
            select(*SUMMARY_COLUMNS),
            f,
            limit=limit,
            order=order,
            cursor=cursor,
            skip=skip,
            sort=sort,
        )
        return await fetch_all(self.session, query)

    async def list_full(
        self, f: ActionFilter, *, limit: int, order: Order, cursor: Cursor | None = None
    ) -> Sequence[ActionLog]:
        """A page of complete records, for export."""
        query = self.page_query(select(ActionLog), f, limit=limit, order=order, cursor=cursor)
        return (await self.session.scalars(query)).all()

    async def recent_failures(self, since: datetime, limit: int) -> Sequence[Row[Any]]:
        """The newest failed actions since `since`: one newest-first, limited scan of the
        `(tenant_id, status, created_at)` index per failed status, merged. With both statuses
        in one IN condition the database reads and sorts every failure of the range instead."""
        newest = [
            self.page_query(
                select(*SUMMARY_COLUMNS),
                ActionFilter(statuses=(status,), since=since),
                limit=limit,
                order="desc",
            ).subquery()
            for status in FAILED
        ]
        merged = union_all(*(select(*part.c) for part in newest)).subquery()
        query = select(*merged.c).order_by(merged.c.created_at.desc(), merged.c.id.desc())
        return await fetch_all(self.session, query.limit(limit))

    async def children_of(self, parent_ids: Sequence[UUID], limit: int) -> Sequence[Row[Any]]:
        """Summary rows of the actions inside any of these (one level down), up to `limit`."""
        query = (
            select(*SUMMARY_COLUMNS)
            .where(COLUMNS.tenant_id == self.tenant_id, COLUMNS.parent_id.in_(list(parent_ids)))
            .order_by(COLUMNS.created_at, COLUMNS.id)
            .limit(limit)
        )
        return await fetch_all(self.session, query)
