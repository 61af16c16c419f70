"""SQL for one tenant's audit rows and the head of its hash chain."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audits.chain import GENESIS_HASH
from app.audits.models import AuditChainHead, AuditLog
from app.audits.schemas import AuditFilters, AuditRead
from app.core.db import upsert_insert, utcnow
from app.core.pagination import Cursor, after_cursor
from app.streamlog import record as streamlog


@dataclass(frozen=True)
class ChainHead:
    sequence: int
    hash: str


def stream_entry(row: AuditLog) -> dict[str, Any]:
    """The live-stream event of an audit row: the row as the audit list shows it."""
    payload = AuditRead.model_validate(row).model_dump_json()
    return streamlog.entry(
        "audit", row.id, payload, user_id=row.user_id, correlation_id=row.correlation_id
    )


class AuditRepository:
    """One tenant's audit rows; every query is filtered by that tenant."""

    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    # Writing: lock the head, append one row, move the head.

    async def lock_head(self) -> ChainHead:
        """The chain's head, locked until the transaction ends, created when absent.

        The first statement is an UPDATE of the head row: it takes the row lock on PostgreSQL
        and the database write lock on SQLite, so concurrent writers of a tenant queue here
        and each one reads the head its predecessor committed.
        """
        head = await self._touch_head()
        if head is None:
            await self.session.execute(await self._insert_head())
            head = await self._touch_head()
        assert head is not None, "the chain head exists after an insert"
        return head

    async def _touch_head(self) -> ChainHead | None:
        statement = (
            update(AuditChainHead)
            .where(AuditChainHead.tenant_id == self.tenant_id)
            .values(updated_at=utcnow())
            .returning(AuditChainHead.sequence, AuditChainHead.hash)
            .execution_options(synchronize_session=False)
        )
        row = (await self.session.execute(statement)).one_or_none()
        return ChainHead(row.sequence, row.hash) if row else None

    async def _insert_head(self) -> Any:
        dialect = (await self.session.connection()).dialect.name
        return (
            upsert_insert(dialect, AuditChainHead)
            .values(tenant_id=self.tenant_id, sequence=0, hash=GENESIS_HASH, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )

    async def append(self, row: AuditLog) -> AuditLog:
        """Store `row` and make it the chain's head (the head must be locked)."""
        row.tenant_id = self.tenant_id
        self.session.add(row)
        await self.session.flush()
        await self.session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.tenant_id == self.tenant_id)
            .values(sequence=row.sequence, hash=row.hash, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        await streamlog.record(await self.session.connection(), self.tenant_id, [stream_entry(row)])
        return row

    # Reading.

    def _select(self) -> Select[AuditLog]:
        return select(AuditLog).where(AuditLog.tenant_id == self.tenant_id)

    async def get(self, audit_id: UUID) -> AuditLog | None:
        return await self.session.scalar(self._select().where(AuditLog.id == audit_id))

    async def list(
        self, filters: AuditFilters, cursor: Cursor | None, skip: int, limit: int
    ) -> Sequence[AuditLog]:
        """Newest first, by (created_at, id)."""
        query = self._select()
        for column, value in (
            (AuditLog.action, filters.action),
            (AuditLog.resource_type, filters.resource_type),
            (AuditLog.resource_id, filters.resource_id),
            (AuditLog.user_id, filters.user_id),
            (AuditLog.correlation_id, filters.correlation_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if filters.since is not None:
            query = query.where(AuditLog.created_at >= filters.since)
        if filters.until is not None:
            query = query.where(AuditLog.created_at < filters.until)
        if cursor is not None:
            query = query.where(after_cursor(AuditLog.created_at, AuditLog.id, cursor))
        query = query.order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        return (await self.session.scalars(query.offset(skip).limit(limit))).all()

    async def trail(
        self, resource_type: str, resource_id: str, after_sequence: int, skip: int, limit: int
    ) -> Sequence[AuditLog]:
        """A resource's rows in chain order, oldest first, after `after_sequence`."""
        query = (
            self._select()
            .where(
                AuditLog.resource_type == resource_type,
                AuditLog.resource_id == resource_id,
                AuditLog.sequence > after_sequence,
            )
            .order_by(AuditLog.sequence)
        )
        return (await self.session.scalars(query.offset(skip).limit(limit))).all()

    async def by_correlation(self, correlation_id: str, limit: int) -> Sequence[AuditLog]:
        """The rows of one correlation id, oldest first (walks its tenant-first index)."""
        query = (
            self._select()
            .where(AuditLog.correlation_id == correlation_id)
            .order_by(AuditLog.created_at, AuditLog.sequence)
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    async def last_before(
        self, resource_type: str, resource_id: str, at: datetime
    ) -> AuditLog | None:
        """A resource's last row recorded at or before `at` (the latest in chain order)."""
        query = (
            self._resource(resource_type, resource_id)
            .where(AuditLog.created_at <= at)
            .order_by(AuditLog.sequence.desc())
            .limit(1)
        )
        return await self.session.scalar(query)

    async def has_trail(self, resource_type: str, resource_id: str) -> bool:
        query = self._resource(resource_type, resource_id).with_only_columns(AuditLog.id).limit(1)
        return await self.session.scalar(query) is not None

    def _resource(self, resource_type: str, resource_id: str) -> Select[AuditLog]:
        return self._select().where(
            AuditLog.resource_type == resource_type, AuditLog.resource_id == resource_id
        )

    # Verification: stored rows as plain rows, in chain order, a chunk at a time.

    async def chain_rows(self, after_sequence: int, limit: int) -> Sequence[Row[Any]]:
        query = (
            select(*AuditLog.__table__.columns)
            .where(AuditLog.tenant_id == self.tenant_id, AuditLog.sequence > after_sequence)
            .order_by(AuditLog.sequence)
            .limit(limit)
        )
        return (await self.session.execute(query)).all()

    async def id_at(self, sequence: int) -> UUID | None:
        return await self.session.scalar(
            select(AuditLog.id).where(
                AuditLog.tenant_id == self.tenant_id, AuditLog.sequence == sequence
            )
        )

    async def head(self) -> ChainHead | None:
        row = (
            await self.session.execute(
                select(AuditChainHead.sequence, AuditChainHead.hash).where(
                    AuditChainHead.tenant_id == self.tenant_id
                )
            )
        ).one_or_none()
        return ChainHead(row.sequence, row.hash) if row else None
