"""The SQL of offboarding: revoking a tenant's keys, and deleting its rows a batch at a time.

Batches are chosen by primary key in a subquery (`DELETE … WHERE id IN (SELECT id … LIMIT n)`),
the one bounded delete that PostgreSQL and SQLite both run; each batch is its own short
transaction, so offboarding a large tenant never holds long locks or a huge transaction.
"""

from datetime import datetime
from uuid import UUID

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.models import ActionLog, action_rollups
from app.audits.models import AuditChainHead, AuditLog
from app.core.idempotency import IdempotencyKey
from app.tenants.models import ApiKey, Tenant

BATCHED: dict[str, type[ActionLog] | type[AuditLog]] = {"actions": ActionLog, "audits": AuditLog}


async def find_tenant(session: AsyncSession, ref: str) -> UUID | None:
    """The id of the tenant named by its id or its slug, or None."""
    try:
        by_id = select(Tenant.id).where(Tenant.id == UUID(ref))
        if (found := await session.scalar(by_id)) is not None:
            return found
    except ValueError:
        pass
    return await session.scalar(select(Tenant.id).where(Tenant.slug == ref))


class OffboardingRepository:
    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def revoke_keys(self, now: datetime) -> int:
        result = await self.session.execute(
            update(ApiKey)
            .where(ApiKey.tenant_id == self.tenant_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def delete_batch(self, kind: str, size: int) -> int:
        """Delete up to `size` rows of one kind ("actions", "audits"); how many went."""
        model = BATCHED[kind]
        doomed = (
            select(model.id).where(model.tenant_id == self.tenant_id).limit(size).scalar_subquery()
        )
        result = await self.session.execute(
            delete(model).where(model.tenant_id == self.tenant_id, model.id.in_(doomed))
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def delete_the_rest(self) -> None:
        """The small tables, then the tenant itself (its foreign keys cascade to any table
        that was not named here)."""
        for table in (
            IdempotencyKey.__table__,
            action_rollups,
            AuditChainHead.__table__,
            ApiKey.__table__,
        ):
            assert isinstance(table, Table)
            await self.session.execute(delete(table).where(table.c.tenant_id == self.tenant_id))
        await self.session.execute(delete(Tenant).where(Tenant.id == self.tenant_id))
