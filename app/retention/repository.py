"""SQL of retention: the archive index, and which tenants have a retention policy."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.retention.models import ArchiveRecord
from app.tenants.models import Tenant


class ArchiveRepository:
    """One tenant's archive files."""

    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def add(self, record: ArchiveRecord) -> None:
        record.tenant_id = self.tenant_id
        self.session.add(record)
        await self.session.flush()

    async def get(self, archive_id: UUID) -> ArchiveRecord | None:
        return await self.session.scalar(
            select(ArchiveRecord).where(
                ArchiveRecord.tenant_id == self.tenant_id, ArchiveRecord.id == archive_id
            )
        )

    async def paths(self, kind: str) -> set[str]:
        rows = await self.session.scalars(
            select(ArchiveRecord.path).where(
                ArchiveRecord.tenant_id == self.tenant_id, ArchiveRecord.kind == kind
            )
        )
        return set(rows)


async def list_archives(
    session: AsyncSession,
    tenant_id: UUID | None,
    kind: str | None,
    since: datetime | None,
    skip: int,
    limit: int,
) -> Sequence[ArchiveRecord]:
    """Archive files for the operator, oldest rows first (every tenant unless one is given)."""
    query = select(ArchiveRecord)
    if tenant_id is not None:
        query = query.where(ArchiveRecord.tenant_id == tenant_id)
    if kind is not None:
        query = query.where(ArchiveRecord.kind == kind)
    if since is not None:
        query = query.where(ArchiveRecord.last_at >= since)
    query = query.order_by(
        ArchiveRecord.tenant_id, ArchiveRecord.kind, ArchiveRecord.first_at, ArchiveRecord.id
    )
    return (await session.scalars(query.offset(skip).limit(limit))).all()


async def tenants_with_policy(session: AsyncSession) -> Sequence[Tenant]:
    query = (
        select(Tenant)
        .where(or_(Tenant.retention_days.is_not(None), Tenant.audit_retention_days.is_not(None)))
        .order_by(Tenant.created_at, Tenant.id)
    )
    return (await session.scalars(query)).all()
