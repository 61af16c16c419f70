"""SQL of destinations: one tenant's destinations; the leases and positions of the senders.

`DestinationRepository` is built for one tenant and filters every query by it. The functions
after it serve the senders: `candidates` lists, across tenants, the destinations whose lease
is free (a plain read, on the maintenance pool); everything else names its tenant, so each
statement routes to one shard on a distributed PostgreSQL (there is no cross-tenant `FOR
UPDATE`): a lease is taken by an UPDATE that only matches a free or expired lease, and the
position only moves under the lease.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.destinations.models import Destination
from app.streamlog.models import StreamHead
from app.streams.events import events_after

D = cast(Table, Destination.__table__)
HEADS = cast(Table, StreamHead.__table__)


class DestinationRepository:
    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def add(self, destination: Destination) -> None:
        destination.tenant_id = self.tenant_id
        self.session.add(destination)
        await self.session.flush()

    async def get(self, destination_id: UUID, *, for_update: bool = False) -> Destination | None:
        query = select(Destination).where(
            Destination.tenant_id == self.tenant_id, Destination.id == destination_id
        )
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def all(self) -> Sequence[Destination]:
        query = (
            select(Destination)
            .where(Destination.tenant_id == self.tenant_id)
            .order_by(Destination.created_at, Destination.id)
        )
        return (await self.session.scalars(query)).all()

    async def delete(self, destination: Destination) -> None:
        await self.session.delete(destination)
        await self.session.flush()

    async def flush(self) -> None:
        await self.session.flush()

    async def head(self) -> int:
        """The tenant's last stream event number."""
        query = select(HEADS.c.seq).where(HEADS.c.tenant_id == self.tenant_id)
        return int(await self.session.scalar(query) or 0)

    async def first_after(self, positions: set[int]) -> dict[int, datetime]:
        """When the first event after each position was recorded (absent: none yet)."""
        found: dict[int, datetime] = {}
        connection = await self.session.connection()
        for position in positions:
            if events := await events_after(connection, self.tenant_id, position, 1):
                found[position] = events[0].created_at
        return found


# The senders' side


async def candidates(
    connection: AsyncConnection, holder: str, now: datetime, limit: int = 500
) -> Sequence[Any]:
    """Destinations to deliver whose lease is free, expired or this holder's (all tenants)."""
    query = (
        select(D.c.tenant_id, D.c.id)
        .where(
            D.c.state != "paused",
            or_(
                D.c.lease_expires_at.is_(None),
                D.c.lease_expires_at < now,
                D.c.lease_holder == holder,
            ),
        )
        .limit(limit)
    )
    return (await connection.execute(query)).all()


async def claim(
    connection: AsyncConnection,
    tenant_id: UUID,
    destination_id: UUID,
    holder: str,
    now: datetime,
    until: datetime,
) -> Any:
    """Take (or keep) the lease of one destination; its row, or None when another holds it,
    it is paused or it is gone."""
    statement = (
        update(D)
        .where(
            D.c.tenant_id == tenant_id,
            D.c.id == destination_id,
            D.c.state != "paused",
            or_(
                D.c.lease_expires_at.is_(None),
                D.c.lease_expires_at < now,
                D.c.lease_holder == holder,
            ),
        )
        .values(lease_holder=holder, lease_expires_at=until)
        .returning(*D.c)
    )
    return (await connection.execute(statement)).one_or_none()


async def held_update(
    connection: AsyncConnection,
    tenant_id: UUID,
    destination_id: UUID,
    holder: str,
    values: dict[str, Any],
) -> Any:
    """Change the destination while this holder has its lease: its new row, or None when
    the holder has lost the lease."""
    statement = (
        update(D)
        .where(D.c.tenant_id == tenant_id, D.c.id == destination_id, D.c.lease_holder == holder)
        .values(**values)
        .returning(*D.c)
    )
    return (await connection.execute(statement)).one_or_none()


async def read_held(
    connection: AsyncConnection, tenant_id: UUID, destination_id: UUID, holder: str
) -> Any:
    """The destination if this holder still has its lease (and it is not paused), else None."""
    query = select(D).where(
        D.c.tenant_id == tenant_id,
        D.c.id == destination_id,
        D.c.lease_holder == holder,
        D.c.state != "paused",
    )
    return (await connection.execute(query)).one_or_none()


async def release(
    connection: AsyncConnection, tenant_id: UUID, destination_id: UUID, holder: str
) -> None:
    await held_update(
        connection,
        tenant_id,
        destination_id,
        holder,
        {"lease_holder": None, "lease_expires_at": None},
    )


async def stream_head(connection: AsyncConnection, tenant_id: UUID) -> int:
    query = select(HEADS.c.seq).where(HEADS.c.tenant_id == tenant_id)
    return int(await connection.scalar(query) or 0)


async def pruned_through(connection: AsyncConnection, tenant_id: UUID) -> int:
    query = select(HEADS.c.pruned_through).where(HEADS.c.tenant_id == tenant_id)
    return int(await connection.scalar(query) or 0)


async def stream_holds(connection: AsyncConnection) -> dict[UUID, int]:
    """Per tenant, the lowest position of its destinations: stream events after it are still
    to be delivered (all tenants; for the stream's pruning)."""
    query = select(D.c.tenant_id, func.min(D.c.delivered_through)).group_by(D.c.tenant_id)
    return {tenant_id: int(low) for tenant_id, low in (await connection.execute(query)).all()}
