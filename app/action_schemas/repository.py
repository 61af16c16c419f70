"""SQL of action schemas: one tenant's versions and current schemas, and the cross-tenant
reads that keep each worker's compiled validators in step (app/action_schemas/catalog.py)."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.action_schemas.models import ActionSchema, ActionSchemaVersion
from app.core.db import utcnow

CURRENT = ActionSchema.__table__.c
VERSIONS = ActionSchemaVersion.__table__.c


class SchemaRepository:
    """The schemas of one tenant."""

    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def current(self, action_type: str, *, for_update: bool = False) -> ActionSchema | None:
        query = select(ActionSchema).where(
            ActionSchema.tenant_id == self.tenant_id, ActionSchema.action_type == action_type
        )
        if for_update:
            query = query.with_for_update()
        return (await self.session.scalars(query)).one_or_none()

    async def version(self, action_type: str, version: int) -> ActionSchemaVersion | None:
        return await self.session.get(ActionSchemaVersion, (self.tenant_id, action_type, version))

    async def last_version(self, action_type: str) -> int:
        query = select(func.coalesce(func.max(ActionSchemaVersion.version), 0)).where(
            ActionSchemaVersion.tenant_id == self.tenant_id,
            ActionSchemaVersion.action_type == action_type,
        )
        return int((await self.session.scalar(query)) or 0)

    async def add_version(self, version: ActionSchemaVersion) -> None:
        """Store a new version and make it the one in force."""
        self.session.add(version)
        current = await self.current(version.action_type, for_update=True)
        if current is None:
            self.session.add(
                ActionSchema(
                    tenant_id=self.tenant_id,
                    action_type=version.action_type,
                    version=version.version,
                    active=True,
                    changes=1,
                    updated_at=utcnow(),
                )
            )
        else:
            current.version, current.active = version.version, True
            current.changes += 1
            current.updated_at = utcnow()
        await self.session.flush()

    async def deactivate(self, current: ActionSchema) -> None:
        current.active = False
        current.changes += 1
        current.updated_at = utcnow()
        await self.session.flush()

    async def in_force(self) -> Sequence[ActionSchemaVersion]:
        """The version in force of every action type that has one, by type."""
        query = (
            select(ActionSchemaVersion)
            .join(
                ActionSchema,
                (ActionSchema.tenant_id == ActionSchemaVersion.tenant_id)
                & (ActionSchema.action_type == ActionSchemaVersion.action_type)
                & (ActionSchema.version == ActionSchemaVersion.version),
            )
            .where(ActionSchema.tenant_id == self.tenant_id, ActionSchema.active.is_(True))
            .order_by(ActionSchemaVersion.action_type)
        )
        return (await self.session.scalars(query)).all()


# Across tenants, as the login role (row-level security would hide every tenant's rows).


async def change_mark(connection: AsyncConnection) -> tuple[int, int]:
    """A figure that grows with every put and delete of any tenant's schema."""
    query = select(func.count(), func.coalesce(func.sum(CURRENT.changes), 0))
    count, changes = (await connection.execute(query)).one()
    return int(count), int(changes)


async def every_schema(connection: AsyncConnection) -> Sequence[Any]:
    """Every tenant's action types with a schema row: the version in force, if any."""
    query = select(
        CURRENT.tenant_id,
        CURRENT.action_type,
        CURRENT.active,
        CURRENT.changes,
        VERSIONS.version,
        VERSIONS.mode,
        VERSIONS.request_payload,
        VERSIONS.response_data,
        VERSIONS.metadata,
    ).join(
        ActionSchemaVersion.__table__,
        (VERSIONS.tenant_id == CURRENT.tenant_id)
        & (VERSIONS.action_type == CURRENT.action_type)
        & (VERSIONS.version == CURRENT.version),
    )
    return (await connection.execute(query)).all()
