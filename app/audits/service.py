"""AuditService: audit rows in a session, for the service's own changes and idempotent writes.

The service audits its own changes (tenants, keys, alert rules, retention) in the session of
the change, so that the row commits or rolls back with it; `log` builds the event
(app/audits/events.py) and extends the chain with it through the one chain extension
(`extend_chains`), which the HTTP routes' writer also uses. A write sent with an
`Idempotency-Key` commits here too, in the request's session, together with its key: through
the same `AuditRecorder.write` as every other recorded event, with a writer on the session.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.audits.chain import GENESIS_HASH
from app.audits.checkpoints import CheckpointRepository
from app.audits.events import Event, EventBuilder
from app.audits.models import AuditLog
from app.audits.recorder import AUDIT_EVENTS, AuditRecorder, PreparedEvents
from app.audits.repository import AuditRepository, AuditRow, ChainHead, extend_chains
from app.audits.schemas import (
    AuditFilters,
    AuditRead,
    ChainVerification,
    CheckpointRead,
    PublicKey,
    PublicKeys,
    ResourceState,
)
from app.audits.signing import SIGNED_PREFIX, Signer, public_keys, public_pem
from app.audits.verify import ChainVerifier
from app.core import metrics
from app.core.auth import Actor
from app.core.db import utcnow
from app.core.errors import NotFound, invalid
from app.core.idempotency import IdempotencyRepository, Written
from app.core.pagination import Cursor, SequenceCursor
from app.core.recording import record_once
from app.core.redact import PayloadRules
from app.core.tenancy import use_tenant
from app.core.writer import SessionWriter
from app.subjects.sealing import filter_values, open_rows

# ORM attribute of each column of an audit row (`metadata` is `metadata_`).
_ATTRIBUTES = [(a.key, a.columns[0].name) for a in AuditLog.__mapper__.column_attrs]


class AuditService:
    def __init__(self, session: AsyncSession, rules: PayloadRules) -> None:
        self.session = session
        self.events = EventBuilder(rules)

    async def log_create(
        self,
        tenant_id: UUID,
        resource_type: str,
        resource_id: str,
        data: dict[str, Any],
        actor: Actor | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AuditRead:
        """Record that a resource was created with `data`."""
        row = await self.log(
            tenant_id, "create", resource_type, resource_id, None, data, actor, metadata
        )
        assert row is not None, "only an update can be a no-op"
        return row

    async def log_update(
        self,
        tenant_id: UUID,
        resource_type: str,
        resource_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
        actor: Actor | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AuditRead | None:
        """Record a change from `before` to `after`; None (nothing written) when they are equal."""
        return await self.log(
            tenant_id, "update", resource_type, resource_id, before, after, actor, metadata
        )

    async def log_delete(
        self,
        tenant_id: UUID,
        resource_type: str,
        resource_id: str,
        data: dict[str, Any],
        actor: Actor | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AuditRead:
        """Record that a resource holding `data` was deleted."""
        row = await self.log(
            tenant_id, "delete", resource_type, resource_id, data, None, actor, metadata
        )
        assert row is not None, "only an update can be a no-op"
        return row

    async def log(
        self,
        tenant_id: UUID,
        action: str,
        resource_type: str,
        resource_id: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        actor: Actor | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        correlation_id: str | None = None,
    ) -> AuditRead | None:
        """Record any event; an `update` with `before` equal to `after` writes nothing (None).

        `correlation_id` ties the change to the actions of the same incident, job or trace.
        """
        event = self.events.build(
            action,
            resource_type,
            resource_id,
            before,
            after,
            actor,
            metadata,
            correlation_id=correlation_id,
        )
        if event is None:
            return None
        (row,) = await self.append(tenant_id, [event])
        return AuditRead.of_row(row)

    async def append(self, tenant_id: UUID, events: Sequence[Event]) -> list[AuditRow]:
        """Extend the tenant's chain with built events in the session's transaction."""
        await use_tenant(self.session, tenant_id)  # row-level security: the rows' tenant
        (rows,) = await extend_chains(await self.session.connection(), [(tenant_id, events)])
        metrics.AUDITS_RECORDED.inc(len(rows))  # committed by the session's owner
        return rows

    async def record_once(
        self, tenant_id: UUID, key: str, prepared: PreparedEvents, ttl_hours: int
    ) -> Written:
        """Record prepared events once per idempotency key; a retry replays the first answer.

        The answer holds the rows' places in the chain, known only once they are appended:
        `record_once` claims the key first and settles it with the answer.
        """
        await use_tenant(self.session, tenant_id)  # row-level security: the rows' tenant
        keys = IdempotencyRepository(self.session, tenant_id)
        writer = SessionWriter(self.session, AUDIT_EVENTS)
        recorder = AuditRecorder(tenant_id, self.events, writer)
        return await record_once(keys, key, prepared, recorder.write, utcnow(), ttl_hours)

    async def opened(self, tenant_id: UUID, rows: Sequence[AuditLog]) -> list[AuditLog]:
        """The rows as readers see them: sealed personal fields opened, or "[ERASED]"
        (app/subjects/sealing.py). Opened rows are copies outside the session: the stored
        rows never change."""
        if not any(row.sealed for row in rows):
            return list(rows)
        as_dicts = [{name: getattr(row, key) for key, name in _ATTRIBUTES} for row in rows]
        opened = await open_rows(self.session, tenant_id, as_dicts)
        return [
            row if not row.sealed else AuditLog(**{key: plain[name] for key, name in _ATTRIBUTES})
            for row, plain in zip(rows, opened, strict=True)
        ]

    async def _repository(
        self, tenant_id: UUID, user_id: str | None = None, resource_id: str | None = None
    ) -> AuditRepository:
        """The tenant's repository, matching filter values against their digests as well."""
        aliases = {}
        for name, value in (("user_id", user_id), ("resource_id", resource_id)):
            if value is not None:
                aliases[name] = await filter_values(self.session, tenant_id, value)
        return AuditRepository(self.session, tenant_id, aliases)

    async def get(self, tenant_id: UUID, audit_id: UUID) -> AuditLog:
        row = await AuditRepository(self.session, tenant_id).get(audit_id)
        if row is None:
            raise NotFound(f"audit log {audit_id} not found")
        (opened,) = await self.opened(tenant_id, [row])
        return opened

    async def list(
        self, tenant_id: UUID, filters: AuditFilters, cursor: str | None, skip: int, limit: int
    ) -> tuple[Sequence[AuditLog], Cursor | None]:
        """A page of rows, newest first, and the cursor of the next page (None on the last)."""
        if filters.since and filters.until and filters.since > filters.until:
            raise invalid(("query", "since"), "since must not be after until")
        after = Cursor.decode(cursor) if cursor else None
        repository = await self._repository(tenant_id, filters.user_id, filters.resource_id)
        rows = await repository.list(filters, after, skip, limit + 1)
        next_cursor = Cursor.of(rows[limit - 1]) if len(rows) > limit else None
        return await self.opened(tenant_id, rows[:limit]), next_cursor

    async def trail(
        self,
        tenant_id: UUID,
        resource_type: str,
        resource_id: str,
        cursor: str | None,
        skip: int,
        limit: int,
    ) -> tuple[Sequence[AuditLog], SequenceCursor | None]:
        """A page of a resource's rows, oldest first, and the next page's cursor."""
        after = SequenceCursor.decode(cursor).sequence if cursor else 0
        repository = await self._repository(tenant_id, resource_id=resource_id)
        rows = await repository.trail(resource_type, resource_id, after, skip, limit + 1)
        next_cursor = SequenceCursor(rows[limit - 1].sequence) if len(rows) > limit else None
        return await self.opened(tenant_id, rows[:limit]), next_cursor

    async def by_correlation(
        self, tenant_id: UUID, correlation_id: str, limit: int
    ) -> Sequence[AuditLog]:
        """The first `limit` rows of one correlation id, oldest first."""
        rows = await AuditRepository(self.session, tenant_id).by_correlation(correlation_id, limit)
        return await self.opened(tenant_id, rows)

    async def state_at(
        self, tenant_id: UUID, resource_type: str, resource_id: str, at: datetime
    ) -> ResourceState:
        """A resource's fields at `at`: the `after` of its last event recorded by then.

        After a `delete` the resource is `deleted` and has no fields. Before its first event it
        did not exist yet (`exists` false); a resource with no event at all is a 404.
        """
        repository = await self._repository(tenant_id, resource_id=resource_id)
        row = await repository.last_before(resource_type, resource_id, at)
        if row is not None:
            (row,) = await self.opened(tenant_id, [row])
        if row is None:
            if not await repository.has_trail(resource_type, resource_id):
                raise NotFound(f"no audit event for {resource_type} {resource_id}")
            return ResourceState(
                resource_type=resource_type, resource_id=resource_id, at=at, exists=False
            )
        deleted = row.action == "delete"
        return ResourceState(
            resource_type=resource_type,
            resource_id=resource_id,
            at=at,
            exists=not deleted,
            deleted=deleted,
            state=None if deleted else (row.changes or {}).get("after"),
            sequence=row.sequence,
            event_id=row.id,
            event_action=row.action,
            as_of=row.created_at,
        )

    async def verify(self, tenant_id: UUID) -> ChainVerification:
        """Recompute the tenant's chain from its stored rows."""
        return await verify_chain(self.session, tenant_id)


async def verify_chain(session: AsyncSession, tenant_id: UUID) -> ChainVerification:
    """Recompute a tenant's chain from its stored rows (no write rules needed).

    After retention pruned rows, from the latest checkpoint: its signature must hold, no row
    at or below it may remain, and the rows after it must follow it.
    """
    repository = AuditRepository(session, tenant_id)
    checkpoint = await CheckpointRepository(session, tenant_id).latest()
    if checkpoint is None:
        return await ChainVerifier(repository).run()
    pruned = {
        "pruned_through": checkpoint.sequence,
        "checkpoint": CheckpointRead.model_validate(checkpoint, from_attributes=True),
    }
    problem = checkpoint.problem(await public_keys(session))
    if problem is None:
        problem, at = await _rows_below(session, tenant_id, checkpoint.sequence)
    else:
        at = checkpoint.sequence
    if problem is not None:
        head = await repository.head() or ChainHead(0, GENESIS_HASH)
        return ChainVerification(
            valid=False,
            checked=0,
            head_sequence=head.sequence,
            head_hash=head.hash,
            first_invalid_sequence=at,
            first_invalid_id=await repository.id_at(at),
            reason=problem,
            **pruned,
        )
    start = ChainHead(checkpoint.sequence, checkpoint.hash)
    result = await ChainVerifier(repository, start=start).run()
    return result.model_copy(update=pruned)


async def _rows_below(
    session: AsyncSession, tenant_id: UUID, sequence: int
) -> tuple[str | None, int]:
    """A row still stored at or below a checkpoint was put back (or made up) after pruning."""
    lowest = await CheckpointRepository(session, tenant_id).lowest_sequence_through(sequence)
    if lowest is None:
        return None, 0
    return (
        f"row {lowest} is at or below the checkpoint (sequence {sequence}), whose rows were "
        "pruned: it was inserted afterwards",
        lowest,
    )


async def published_keys(session: AsyncSession, current: Signer) -> PublicKeys:
    """The current signing key and every earlier one that may have signed a checkpoint."""
    known = await public_keys(session)
    known.setdefault(current.key_id, current.public_key)
    keys = [
        PublicKey(
            key_id=key_id,
            public_key=public,
            public_key_pem=public_pem(public),
            current=key_id == current.key_id,
        )
        for key_id, public in sorted(known.items(), key=lambda kv: kv[0] != current.key_id)
    ]
    return PublicKeys(
        key_id=current.key_id,
        public_key=current.public_key,
        signed_message=SIGNED_PREFIX.decode().strip(),
        keys=keys,
    )
