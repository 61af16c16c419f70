"""SQL for one tenant's audit rows and the head of its hash chain.

Every audit row is written by `extend_chains`, one event or a group commit's many: the HTTP
routes through the worker's writer (app/core/writer.py), the service's self-audits in the
session of the change they describe.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import ColumnElement, Row, Select, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.audits import merkle_log
from app.audits.chain import GENESIS_HASH, row_hash
from app.audits.events import Event
from app.audits.models import AuditChainHead, AuditLog
from app.audits.schemas import AuditFilters, AuditRead
from app.core.db import insert_values, new_id, upsert_insert, utcnow
from app.core.pagination import Cursor, after_cursor
from app.core.tenancy import set_tenant
from app.streamlog import record as streamlog
from app.subjects.sealing import masked, seal_rows, stream_payload

AUDITS = cast(Table, AuditLog.__table__)
HEADS = cast(Table, AuditChainHead.__table__)
AUDIT_COLUMNS: tuple[str, ...] = tuple(column.name for column in AUDITS.columns)

TenantEvents = tuple[UUID, Sequence[Event]]
AuditRow = dict[str, Any]  # a stored row, by column name ("metadata", not "metadata_")


@dataclass(frozen=True)
class ChainHead:
    sequence: int
    hash: str


def event_payload(row: AuditRow) -> str:
    """The live-stream payload of a stored audit row (app/streams/events.py reads it from the
    row): the row as the audit list shows it, its personal fields as stored (placeholders and
    their ciphertext): the stream never holds their values, which its readers open while the
    subject's key exists (`open_payloads`)."""
    return stream_payload(AuditRead.of_row(masked(row)).model_dump_json(), row)


def stream_entry(row: AuditRow) -> dict[str, Any]:
    """The stream event of a stored audit row, as `stream_events` keeps one."""
    return streamlog.entry(
        "audit",
        row["id"],
        event_payload(row),
        user_id=row["user_id"],
        correlation_id=row["correlation_id"],
    )


async def extend_chains(
    connection: AsyncConnection, writes: Sequence[TenantEvents], *, announce_now: bool = True
) -> list[list[AuditRow]]:
    """Append each write's events to its tenant's chain, in order; the stored rows, per write.

    Runs inside the connection's transaction, which the caller commits. The tenants of a group
    are extended one after another in one fixed order (by tenant id bytes), so two groups that
    share tenants lock their chain heads (and stream counters) in the same order and never
    deadlock. If the transaction rolls back, the heads roll back with it and the next writer
    takes the same sequence numbers again: a chain never has a gap. With
    `announce_now=False` the caller announces the tenants on the stream after its commit
    (`streamlog.announce`), as the group-commit writer does.
    """
    merged: dict[UUID, list[Event]] = {}
    for tenant_id, events in writes:
        merged.setdefault(tenant_id, []).extend(events)
    stored: dict[UUID, list[AuditRow]] = {}
    for tenant_id in sorted(merged, key=lambda tenant: tenant.bytes):
        stored[tenant_id] = await extend_tenant_chain(
            connection, tenant_id, merged[tenant_id], announce_now
        )
    # hand each write its own rows, in the order its events came
    taken = dict.fromkeys(stored, 0)
    answers = []
    for tenant_id, events in writes:
        start = taken[tenant_id]
        answers.append(stored[tenant_id][start : start + len(events)])
        taken[tenant_id] = start + len(events)
    return answers


async def extend_tenant_chain(
    connection: AsyncConnection, tenant_id: UUID, events: Sequence[Event], announce_now: bool
) -> list[AuditRow]:
    """The per-tenant part of a chain extension: every statement that touches one tenant.

    Locks the tenant's head once (creating it when absent), gives each event in order its id,
    sequence, created_at (taken after the lock, so that time follows the chain; an event built
    with its own, as the demo's back-dated trail is, keeps it), prev_hash and hash, inserts
    the rows with their stream numbers (each row is its own stream event), moves the head;
    all of it as the tenant of the transaction, for row-level security.
    """
    # durable: an acknowledged event must survive a crash whatever the server's default
    await set_tenant(connection, tenant_id, durable=True)
    head = await _lock_head(connection, tenant_id)
    rows: list[AuditRow] = []
    sequence, prev_hash = head.sequence, head.hash
    for event in events:
        sequence += 1
        row = {
            **event,
            "id": new_id(),
            "tenant_id": tenant_id,
            "sequence": sequence,
            "created_at": event.get("created_at") or utcnow(),
            "sealed": None,
        }
        rows.append(row)
    if not rows:
        return rows
    # What is stored, and hashed: the personal fields sealed (the rows answered keep them).
    stored = await seal_rows(connection, tenant_id, rows)
    # each row is its own stream event (app/streams/events.py): numbered, not copied
    first = await streamlog.number(connection, tenant_id, len(stored))
    for offset, (row, kept) in enumerate(zip(rows, stored, strict=True)):
        kept["prev_hash"], kept["hash"] = prev_hash, row_hash(prev_hash, kept)
        row["prev_hash"], row["hash"] = kept["prev_hash"], kept["hash"]
        kept["stream_seq"] = row["stream_seq"] = first + offset
        prev_hash = kept["hash"]
    await _insert(connection, stored)
    await merkle_log.append_events(connection, tenant_id, head.sequence, stored)
    await connection.execute(
        update(HEADS)
        .where(HEADS.c.tenant_id == tenant_id)
        .values(sequence=sequence, hash=prev_hash, updated_at=utcnow())
    )
    await streamlog.mark(connection, [tenant_id], announce_now=announce_now)
    return rows


async def _lock_head(connection: AsyncConnection, tenant_id: UUID) -> ChainHead:
    """The chain's head, locked until the transaction ends, created when absent.

    The first statement is an UPDATE of the head row: it takes the row lock on PostgreSQL
    and the database write lock on SQLite, so concurrent writers of a tenant queue here
    and each one reads the head its predecessor committed.
    """
    head = await _touch_head(connection, tenant_id)
    if head is None:
        await connection.execute(
            upsert_insert(connection.dialect.name, HEADS)
            .values(tenant_id=tenant_id, sequence=0, hash=GENESIS_HASH, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )
        head = await _touch_head(connection, tenant_id)
    assert head is not None, "the chain head exists after an insert"
    return head


async def _touch_head(connection: AsyncConnection, tenant_id: UUID) -> ChainHead | None:
    statement = (
        update(HEADS)
        .where(HEADS.c.tenant_id == tenant_id)
        .values(updated_at=utcnow())
        .returning(HEADS.c.sequence, HEADS.c.hash)
    )
    row = (await connection.execute(statement)).one_or_none()
    return ChainHead(row.sequence, row.hash) if row else None


async def _insert(connection: AsyncConnection, rows: list[AuditRow]) -> None:
    """The rows as one multi-row INSERT (`insert_values`), in the connection's transaction:
    the form that a distributed PostgreSQL routes to the tenant's shard under row-level
    security, on every engine."""
    await insert_values(connection, AUDITS, AUDIT_COLUMNS, rows)


def _one_of(column: InstrumentedAttribute[Any], values: Sequence[str]) -> ColumnElement[bool]:
    """`column` equals one of `values`: a value, or also its digest where the field is sealed
    (app/subjects/sealing.py `filter_values`)."""
    return column == values[0] if len(values) == 1 else column.in_(values)


class AuditRepository:
    """One tenant's audit rows; every query is filtered by that tenant.

    `aliases` gives, for a filtered column whose values may be stored as digests (`user_id`,
    `resource_id`), every stored spelling that a filter value matches.
    """

    def __init__(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        aliases: dict[str, list[str]] | None = None,
    ) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.aliases = aliases or {}

    def _matches(self, column: InstrumentedAttribute[Any], value: str) -> ColumnElement[bool]:
        return _one_of(column, self.aliases.get(column.key, [value]))

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
                query = query.where(self._matches(column, value))
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
                self._matches(AuditLog.resource_id, resource_id),
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
            AuditLog.resource_type == resource_type,
            self._matches(AuditLog.resource_id, resource_id),
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
