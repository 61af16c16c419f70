"""SQL for tenants and their API keys."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.tenants.models import ApiKey, Tenant

_KEYS_BY_PREFIX = select(*ApiKey.__table__.columns).where(
    ApiKey.__table__.c.prefix.in_(bindparam("prefixes", expanding=True))
)


async def find_api_keys_by_prefix(
    connection: AsyncConnection, prefixes: Sequence[str]
) -> dict[str, Row[Any]]:
    """The keys with these prefixes, whatever their tenants: authentication starts here.

    The statement is built once: this runs for every authenticated request.
    """
    rows = await connection.execute(_KEYS_BY_PREFIX, {"prefixes": list(prefixes)})
    return {row.prefix: row for row in rows}


class TenantRepository:
    """Tenants, as the operator sees them (not scoped: only the admin API uses this)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, tenant: Tenant) -> Tenant:
        self.session.add(tenant)
        await self.session.flush()
        return tenant

    async def get(self, tenant_id: UUID) -> Tenant | None:
        return await self.session.get(Tenant, tenant_id)

    async def get_by_slug(self, slug: str) -> Tenant | None:
        return await self.session.scalar(select(Tenant).where(Tenant.slug == slug))

    async def slug_taken(self, slug: str) -> bool:
        return await self.get_by_slug(slug) is not None

    async def list(self, skip: int, limit: int) -> Sequence[Tenant]:
        query = select(Tenant).order_by(Tenant.created_at, Tenant.id).offset(skip).limit(limit)
        return (await self.session.scalars(query)).all()


class ApiKeyRepository:
    """One tenant's API keys; every query is filtered by that tenant."""

    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def add(self, key: ApiKey) -> ApiKey:
        key.tenant_id = self.tenant_id
        self.session.add(key)
        await self.session.flush()
        return key

    async def get(self, key_id: UUID) -> ApiKey | None:
        return await self.session.scalar(
            select(ApiKey).where(ApiKey.tenant_id == self.tenant_id, ApiKey.id == key_id)
        )

    async def list(self) -> Sequence[ApiKey]:
        query = (
            select(ApiKey)
            .where(ApiKey.tenant_id == self.tenant_id)
            .order_by(ApiKey.created_at, ApiKey.id)
        )
        return (await self.session.scalars(query)).all()


async def find_api_key_by_id(session: AsyncSession, key_id: UUID) -> ApiKey | None:
    """A key by id, whatever its tenant: for the operator's CLI only."""
    return await session.get(ApiKey, key_id)
