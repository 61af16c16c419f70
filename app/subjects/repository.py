"""SQL of personal-data protection: a tenant's declaration, its subjects' keys, the service key.

Built for one tenant. Works on
the write path's connection (keys are created in the transaction that seals the rows, after the
chain head is locked, so a tenant's writers never race to create one key) and on a request's
session (reads, configuration, erasure).
"""

import secrets
from collections.abc import Collection
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.db import new_id, upsert_insert, utcnow
from app.subjects.crypto import ServiceKey
from app.subjects.models import SubjectConfig, SubjectKey, SubjectWrappingKey

CONFIGS = cast(Table, SubjectConfig.__table__)
KEYS = cast(Table, SubjectKey.__table__)
WRAPPING = cast(Table, SubjectWrappingKey.__table__)

Handle = AsyncConnection | AsyncSession


def _dialect(handle: Handle) -> str:
    if isinstance(handle, AsyncSession):
        assert handle.bind is not None, "a request's session is bound to its engine"
        return handle.bind.dialect.name
    return handle.dialect.name


async def service_key(handle: Handle, tenant_id: UUID) -> ServiceKey:
    """The tenant's service key, generated and stored by the first caller (insert-if-absent,
    then read, so that concurrent first writers agree)."""
    mine = WRAPPING.c.tenant_id == tenant_id
    secret = await handle.scalar(select(WRAPPING.c.secret).where(mine))
    if secret is None:
        await handle.execute(
            upsert_insert(_dialect(handle), WRAPPING)
            .values(tenant_id=tenant_id, secret=secrets.token_hex(32), created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )
        secret = await handle.scalar(select(WRAPPING.c.secret).where(mine))
    assert secret is not None, "the service key exists after an insert"
    return ServiceKey(bytes.fromhex(secret))


class SubjectRepository:
    """One tenant's declaration and subject keys."""

    def __init__(self, handle: Handle, tenant_id: UUID) -> None:
        self.handle = handle
        self.tenant_id = tenant_id

    async def config(self) -> tuple[str, list[str]] | None:
        row = (
            await self.handle.execute(
                select(CONFIGS.c.subject_path, CONFIGS.c.fields).where(
                    CONFIGS.c.tenant_id == self.tenant_id
                )
            )
        ).one_or_none()
        return (row.subject_path, list(row.fields)) if row else None

    async def config_and_secret(self) -> tuple[str, list[str], str | None] | None:
        """The declaration and the tenant's key secret in one read (the write path's)."""
        row = (
            await self.handle.execute(
                select(CONFIGS.c.subject_path, CONFIGS.c.fields, WRAPPING.c.secret)
                .select_from(CONFIGS)
                .outerjoin(WRAPPING, WRAPPING.c.tenant_id == CONFIGS.c.tenant_id)
                .where(CONFIGS.c.tenant_id == self.tenant_id)
            )
        ).one_or_none()
        return (row.subject_path, list(row.fields), row.secret) if row else None

    async def set_config(self, subject_path: str, fields: list[str]) -> None:
        values: dict[str, Any] = {"subject_path": subject_path, "fields": fields}
        changed = await self.handle.execute(
            update(CONFIGS)
            .where(CONFIGS.c.tenant_id == self.tenant_id)
            .values(**values, updated_at=utcnow())
        )
        if not getattr(changed, "rowcount", 0):
            await self.handle.execute(
                insert(CONFIGS).values(tenant_id=self.tenant_id, updated_at=utcnow(), **values)
            )

    async def wrapped_keys(self, digests: Collection[str]) -> dict[str, str | None]:
        """The wrapped key of each known subject among `digests` (None: erased)."""
        if not digests:
            return {}
        rows = await self.handle.execute(
            select(KEYS.c.digest, KEYS.c.wrapped_key).where(
                KEYS.c.tenant_id == self.tenant_id, KEYS.c.digest.in_(sorted(digests))
            )
        )
        return {row.digest: row.wrapped_key for row in rows}

    async def add_keys(self, wrapped: dict[str, str]) -> None:
        """Keys for subjects seen for the first time."""
        now = utcnow()
        await self.handle.execute(
            insert(KEYS),
            [
                {
                    "tenant_id": self.tenant_id,
                    "digest": digest,
                    "id": new_id(),
                    "wrapped_key": key,
                    "created_at": now,
                }
                for digest, key in wrapped.items()
            ],
        )

    async def renew_key(self, digest: str, wrapped: str) -> None:
        """A new key for an erased subject who has new events: their old ones stay erased."""
        await self.handle.execute(
            update(KEYS)
            .where(KEYS.c.tenant_id == self.tenant_id, KEYS.c.digest == digest)
            .values(wrapped_key=wrapped, erased_at=None)
        )

    async def subject(self, digest: str) -> tuple[UUID, datetime | None] | None:
        """A subject's id and when it was erased (None: not erased); None when unknown."""
        row = (
            await self.handle.execute(
                select(KEYS.c.id, KEYS.c.erased_at).where(
                    KEYS.c.tenant_id == self.tenant_id, KEYS.c.digest == digest
                )
            )
        ).one_or_none()
        return (row.id, row.erased_at) if row else None

    async def destroy_key(self, digest: str, at: datetime) -> None:
        await self.handle.execute(
            update(KEYS)
            .where(KEYS.c.tenant_id == self.tenant_id, KEYS.c.digest == digest)
            .values(wrapped_key=None, erased_at=at)
        )
