"""Rules of action schemas: every change a new version, an invalid schema refused, and the
change in force on this worker at once (the others follow, app/action_schemas/catalog.py)."""

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.action_schemas.catalog import SchemaCatalog
from app.action_schemas.models import ActionSchemaVersion
from app.action_schemas.repository import SchemaRepository
from app.action_schemas.schemas import SchemaPut, SchemaRead
from app.action_schemas.validation import CompiledSchema, SchemaInvalid
from app.core.db import utcnow
from app.core.errors import NotFound, invalid


def _read(version: ActionSchemaVersion) -> SchemaRead:
    return SchemaRead(
        action_type=version.action_type,
        version=version.version,
        mode=version.mode,
        request_payload=version.request_payload,
        response_data=version.response_data,
        metadata=version.metadata_,
        created_at=version.created_at,
    )


class SchemaService:
    """The action schemas of one tenant, in the request's session."""

    def __init__(self, session: AsyncSession, tenant_id: UUID, catalog: SchemaCatalog) -> None:
        self.tenant_id = tenant_id
        self.schemas = SchemaRepository(session, tenant_id)
        self.catalog = catalog

    async def put(self, action_type: str, body: SchemaPut) -> SchemaRead:
        """Store a new version of the type's schema and put it in force."""
        parts = body.model_dump(include={"request_payload", "response_data", "metadata"})
        try:
            compiled = CompiledSchema.of(action_type, 0, body.mode, parts)
        except SchemaInvalid as exc:
            raise invalid(("body", exc.part), f"not a valid JSON Schema: {exc.message}") from None
        number = await self.schemas.last_version(action_type) + 1
        version = ActionSchemaVersion(
            tenant_id=self.tenant_id,
            action_type=action_type,
            version=number,
            mode=body.mode,
            request_payload=body.request_payload,
            response_data=body.response_data,
            metadata_=body.metadata,
            created_at=utcnow(),
        )
        await self.schemas.add_version(version)
        current = await self.schemas.current(action_type)
        assert current is not None, "a schema just put is current"
        compiled = CompiledSchema(action_type, number, body.mode, compiled.validators)
        self.catalog.installed(self.tenant_id, action_type, current.changes, compiled)
        return _read(version)

    async def current(self) -> Sequence[SchemaRead]:
        return [_read(version) for version in await self.schemas.in_force()]

    async def in_force(self, action_type: str) -> SchemaRead:
        current = await self.schemas.current(action_type)
        if current is None or not current.active:
            raise NotFound(f"action type {action_type!r} has no schema")
        return await self.version(action_type, current.version)

    async def version(self, action_type: str, number: int) -> SchemaRead:
        version = await self.schemas.version(action_type, number)
        if version is None:
            raise NotFound(f"action type {action_type!r} has no schema version {number}")
        return _read(version)

    async def delete(self, action_type: str) -> None:
        """Stop checking the type (its versions are kept)."""
        current = await self.schemas.current(action_type, for_update=True)
        if current is None or not current.active:
            raise NotFound(f"action type {action_type!r} has no schema")
        await self.schemas.deactivate(current)
        self.catalog.installed(self.tenant_id, action_type, current.changes, None)
