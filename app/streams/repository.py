"""SQL of the live stream: heads, events after a position, leases of open streams, pruning."""

from dataclasses import dataclass
from datetime import datetime
from typing import cast
from uuid import UUID

from sqlalchemy import Table, delete, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.actions.models import action_logs
from app.audits.models import AuditLog
from app.streamlog.models import StreamEvent, StreamHead
from app.streams.events import StoredEvent, events_after
from app.streams.models import StreamLease

EVENTS = cast(Table, StreamEvent.__table__)
HEADS = cast(Table, StreamHead.__table__)
LEASES = cast(Table, StreamLease.__table__)
ACTIONS = action_logs
AUDITS = cast(Table, AuditLog.__table__)


@dataclass(frozen=True)
class Head:
    seq: int
    pruned_through: int


class StreamRepository:
    """One tenant's stream, read and leased on a connection the caller holds."""

    def __init__(self, connection: AsyncConnection, tenant_id: UUID) -> None:
        self.connection = connection
        self.tenant_id = tenant_id

    async def head(self) -> Head:
        row = (
            await self.connection.execute(
                select(HEADS.c.seq, HEADS.c.pruned_through).where(
                    HEADS.c.tenant_id == self.tenant_id
                )
            )
        ).one_or_none()
        return Head(row.seq, row.pruned_through) if row else Head(0, 0)

    async def after(self, seq: int, limit: int, upto: int | None = None) -> list[StoredEvent]:
        """Events with numbers above `seq` (and at most `upto`), in order."""
        return await events_after(self.connection, self.tenant_id, seq, limit, upto)

    # Leases: at most STREAM_MAX_PER_KEY open streams per key, across workers and hosts.

    async def lease(
        self, lease_id: UUID, key_id: UUID, limit: int, expires_at: datetime, now: datetime
    ) -> int | None:
        """Take a lease for `key_id` unless it has `limit` live ones (then their count)."""
        if self.connection.dialect.name == "postgresql":
            # Leases of one key are counted and taken one transaction at a time.
            await self.connection.execute(
                select(func.pg_advisory_xact_lock(func.hashtextextended(str(key_id), 0)))
            )
        await self.connection.execute(
            delete(LEASES).where(
                LEASES.c.tenant_id == self.tenant_id,
                LEASES.c.key_id == key_id,
                LEASES.c.expires_at <= now,
            )
        )
        live = await self.connection.scalar(
            select(func.count()).where(
                LEASES.c.tenant_id == self.tenant_id, LEASES.c.key_id == key_id
            )
        )
        if int(live or 0) >= limit:
            return int(live or 0)
        await self.connection.execute(
            insert(LEASES).values(
                tenant_id=self.tenant_id, id=lease_id, key_id=key_id, expires_at=expires_at
            )
        )
        return None

    async def release(self, lease_id: UUID) -> None:
        await self.connection.execute(
            delete(LEASES).where(LEASES.c.tenant_id == self.tenant_id, LEASES.c.id == lease_id)
        )


async def renew_leases(
    connection: AsyncConnection, leases: list[tuple[UUID, UUID]], expires_at: datetime
) -> None:
    """Extend the leases (tenant id, lease id) a worker holds open (one statement for all)."""
    if leases:
        key = tuple_(LEASES.c.tenant_id, LEASES.c.id)
        statement = update(LEASES).where(key.in_(leases)).values(expires_at=expires_at)
        await connection.execute(statement)


async def heads_of(connection: AsyncConnection, tenant_ids: list[UUID]) -> dict[UUID, int]:
    """The last event number of each of these tenants (absent: none yet)."""
    if not tenant_ids:
        return {}
    rows = await connection.execute(
        select(HEADS.c.tenant_id, HEADS.c.seq).where(HEADS.c.tenant_id.in_(tenant_ids))
    )
    return {row.tenant_id: row.seq for row in rows}


async def prune(
    connection: AsyncConnection,
    before: datetime,
    limit: int = 5000,
    holds: dict[UUID, int] | None = None,
    hard_before: datetime | None = None,
) -> int:
    """Delete up to `limit` events created before `before`; note how far each tenant's went.

    `holds` keeps, per tenant, the events after a position (what its destinations have yet
    to deliver), unless they were created before `hard_before`. A record's own row is its
    event (app/streams/events.py): it is not deleted here (it is the record), but the
    stream's `pruned_through` passes it all the same, so that the stream keeps what its
    retention says, whichever table an event is in.
    """
    holds = holds or {}
    heads = (await connection.execute(select(HEADS.c.tenant_id, HEADS.c.pruned_through))).all()
    old = await _last_events(connection, before)
    hard = await _last_events(connection, hard_before, list(holds)) if holds and hard_before else {}
    deleted = 0
    for tenant_id, pruned in heads:
        last = max(old.get(tenant_id, 0), await _last_record(connection, tenant_id, pruned, before))
        if tenant_id in holds:
            hard_last = hard.get(tenant_id, 0)
            if hard_before is not None:
                hard_last = max(
                    hard_last, await _last_record(connection, tenant_id, pruned, hard_before)
                )
            last = max(min(last, holds[tenant_id]), hard_last)
        if last <= pruned:
            continue
        result = await connection.execute(
            delete(EVENTS).where(EVENTS.c.tenant_id == tenant_id, EVENTS.c.seq <= last)
        )
        deleted += result.rowcount or 0
        await connection.execute(
            update(HEADS)
            .where(HEADS.c.tenant_id == tenant_id, HEADS.c.pruned_through < last)
            .values(pruned_through=last)
        )
        if deleted >= limit:
            break
    return deleted


async def _last_events(
    connection: AsyncConnection, before: datetime, tenant_ids: list[UUID] | None = None
) -> dict[UUID, int]:
    """Per tenant, the last number in `stream_events` of an event created before `before`."""
    query = select(EVENTS.c.tenant_id, func.max(EVENTS.c.seq)).where(EVENTS.c.created_at < before)
    if tenant_ids is not None:
        query = query.where(EVENTS.c.tenant_id.in_(tenant_ids))
    rows = await connection.execute(query.group_by(EVENTS.c.tenant_id))
    return {tenant_id: int(last) for tenant_id, last in rows}


# How many numbered rows of a record table one pruning pass looks at per tenant (by number,
# from where the stream was last pruned): later passes go on from there.
RECORD_SCAN = 50_000


async def _last_record(
    connection: AsyncConnection, tenant_id: UUID, pruned: int, before: datetime
) -> int:
    """The last number, among each record table's next RECORD_SCAN numbered rows of the
    tenant, of a row whose event is older than `before` (an action's: its last change); 0 for
    none."""
    last = 0
    for table, moment in ((ACTIONS, ACTIONS.c.updated_at), (AUDITS, AUDITS.c.created_at)):
        numbered = table.c.stream_seq
        scan = (
            select(numbered, moment.label("moment"))
            .where(table.c.tenant_id == tenant_id, numbered > pruned)
            .order_by(numbered)
            .limit(RECORD_SCAN)
            .subquery()
        )
        found = await connection.scalar(
            select(func.max(scan.c.stream_seq)).where(scan.c.moment < before)
        )
        last = max(last, int(found or 0))
    return last
