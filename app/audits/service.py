"""AuditService: the one way audit rows are written, by the HTTP API and by the service itself.

A write validates and redacts the event, computes its field-level diff, then appends it to
the tenant's hash chain. An `update` whose `before` equals its `after` changed nothing: it
writes nothing and returns None. Secrets are redacted before the row is hashed and stored,
so neither the database nor the chain ever holds them.
"""

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic_core import PydanticSerializationError, to_jsonable_python
from sqlalchemy.ext.asyncio import AsyncSession

from app.audits.chain import GENESIS_HASH, row_hash
from app.audits.checkpoints import CheckpointRepository
from app.audits.diff import compute_diff, json_equal
from app.audits.models import AuditLog
from app.audits.repository import AuditRepository, ChainHead
from app.audits.schemas import (
    AuditFilters,
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
from app.core.db import new_id, utcnow
from app.core.errors import Loc, NotFound, invalid
from app.core.pagination import Cursor, SequenceCursor
from app.core.redact import PayloadRules, json_depth_exceeds
from app.core.storable import NOT_FINITE, text_problem
from app.core.tenancy import use_tenant

NO_CHANGES = "no changes: before equals after, nothing was recorded"

# Column limits of audit_logs: (field, maximum length, required).
_TEXT_FIELDS = (
    ("action", 100, True),
    ("resource_type", 100, True),
    ("resource_id", 255, True),
    ("user_id", 255, False),
    ("ip_address", 45, False),
    ("user_agent", 1024, False),
    ("correlation_id", 255, False),
)


def _check_text(loc: Loc, value: str) -> None:
    if (problem := text_problem(value)) is not None:
        raise invalid(loc, problem)


def _check_json(loc: Loc, value: Any) -> None:
    """Refuse what JSON columns cannot store or roundtrip: NUL, lone surrogates, NaN and
    infinities (app/core/storable.py)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                _check_text((*loc, key), key)
            _check_json((*loc, key), item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json((*loc, index), item)
    elif isinstance(value, str):
        _check_text(loc, value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise invalid(loc, NOT_FINITE)


class AuditService:
    def __init__(self, session: AsyncSession, rules: PayloadRules) -> None:
        self.session = session
        self.redactor = rules.redactor
        self.max_json_depth = rules.max_json_depth

    async def log_create(
        self,
        tenant_id: UUID,
        resource_type: str,
        resource_id: str,
        data: dict[str, Any],
        actor: Actor | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AuditLog:
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
    ) -> AuditLog | None:
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
    ) -> AuditLog:
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
    ) -> AuditLog | None:
        """Record any event; an `update` with `before` equal to `after` writes nothing (None).

        `correlation_id` ties the change to the actions of the same incident, job or trace.
        """
        actor = actor or Actor(None)
        texts = {
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "user_id": actor.id,
            "ip_address": actor.ip_address,
            "user_agent": actor.user_agent,
            "correlation_id": correlation_id,
        }
        self._check_texts(texts)
        if actor.user_agent is not None:
            texts["user_agent"] = self.redactor.scrub(actor.user_agent)
        before, after = self._json("before", before), self._json("after", after)
        metadata = self._json("metadata", metadata) or {}
        if action == "update" and json_equal(before, after):
            return None
        changes = {
            "before": self.redactor.redact(before),
            "after": self.redactor.redact(after),
            "diff": compute_diff(before, after, self.redactor),
        }
        content = {**texts, "changes": changes, "metadata": self.redactor.redact(metadata)}
        return await self._append(tenant_id, content)

    def _check_texts(self, texts: dict[str, str | None]) -> None:
        for field, limit, required in _TEXT_FIELDS:
            value, loc = texts[field], ("body", field)
            if value is None:
                if required:
                    raise invalid(loc, "field required", "missing")
                continue
            if not isinstance(value, str):
                raise invalid(loc, "must be a string", "string_type")
            if required and not value:
                raise invalid(loc, "must not be empty", "string_too_short")
            if len(value) > limit:
                raise invalid(loc, f"must be at most {limit} characters", "string_too_long")
            _check_text(loc, value)

    def _json(self, field: str, value: Any) -> Any:
        if value is None:
            return None
        loc = ("body", field)
        if not isinstance(value, dict):
            raise invalid(loc, "must be a JSON object or null", "dict_type")
        if json_depth_exceeds(value, self.max_json_depth):
            message = f"JSON nested deeper than {self.max_json_depth} levels"
            raise invalid(loc, message, "json_too_deep")
        _check_json(loc, value)
        try:
            return to_jsonable_python(value)
        except (PydanticSerializationError, ValueError):
            raise invalid(loc, "is not JSON") from None

    async def _append(self, tenant_id: UUID, content: dict[str, Any]) -> AuditLog:
        await use_tenant(self.session, tenant_id)  # row-level security: the row's tenant
        repository = AuditRepository(self.session, tenant_id)
        head = await repository.lock_head()
        # Taken after the lock, so that time follows the chain within a tenant.
        content.update(
            id=new_id(), tenant_id=tenant_id, sequence=head.sequence + 1, created_at=utcnow()
        )
        digest = row_hash(head.hash, content)
        metadata = content.pop("metadata")
        row = AuditLog(**content, metadata_=metadata, prev_hash=head.hash, hash=digest)
        appended = await repository.append(row)
        metrics.AUDITS_RECORDED.inc()
        return appended

    async def get(self, tenant_id: UUID, audit_id: UUID) -> AuditLog:
        row = await AuditRepository(self.session, tenant_id).get(audit_id)
        if row is None:
            raise NotFound(f"audit log {audit_id} not found")
        return row

    async def list(
        self, tenant_id: UUID, filters: AuditFilters, cursor: str | None, skip: int, limit: int
    ) -> tuple[Sequence[AuditLog], Cursor | None]:
        """A page of rows, newest first, and the cursor of the next page (None on the last)."""
        if filters.since and filters.until and filters.since > filters.until:
            raise invalid(("query", "since"), "since must not be after until")
        after = Cursor.decode(cursor) if cursor else None
        repository = AuditRepository(self.session, tenant_id)
        rows = await repository.list(filters, after, skip, limit + 1)
        next_cursor = Cursor.of(rows[limit - 1]) if len(rows) > limit else None
        return rows[:limit], next_cursor

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
        repository = AuditRepository(self.session, tenant_id)
        rows = await repository.trail(resource_type, resource_id, after, skip, limit + 1)
        next_cursor = SequenceCursor(rows[limit - 1].sequence) if len(rows) > limit else None
        return rows[:limit], next_cursor

    async def by_correlation(
        self, tenant_id: UUID, correlation_id: str, limit: int
    ) -> Sequence[AuditLog]:
        """The first `limit` rows of one correlation id, oldest first."""
        return await AuditRepository(self.session, tenant_id).by_correlation(correlation_id, limit)

    async def state_at(
        self, tenant_id: UUID, resource_type: str, resource_id: str, at: datetime
    ) -> ResourceState:
        """A resource's fields at `at`: the `after` of its last event recorded by then.

        After a `delete` the resource is `deleted` and has no fields. Before its first event it
        did not exist yet (`exists` false); a resource with no event at all is a 404.
        """
        repository = AuditRepository(self.session, tenant_id)
        row = await repository.last_before(resource_type, resource_id, at)
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
