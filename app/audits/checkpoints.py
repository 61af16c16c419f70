"""Checkpoints of a tenant's audit chain, and the deletion of the rows they stand for.

Retention deletes a tenant's oldest audit rows; the chain must still verify afterwards. So,
in the transaction that deletes the rows up to sequence S, a checkpoint (S, the hash of row
S, the time, a signature) is stored first. Verification then starts from the latest
checkpoint instead of the genesis hash: row S+1 must follow it, and everything after is
checked as before, so an edit, insertion or deletion among the remaining rows is still found.
The archive files keep the deleted rows, and `actionlog verify-archive` recomputes their
chain up to the checkpoint offline.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audits.models import AuditCheckpoint, AuditLog
from app.audits.repository import stream_entry
from app.audits.signing import Signer, checkpoint_message, verify_signature
from app.streamlog import record as streamlog


@dataclass(frozen=True)
class Checkpoint:
    tenant_id: UUID
    sequence: int
    hash: str
    created_at: datetime
    key_id: str
    signature: str

    @classmethod
    def signed(
        cls, signer: Signer, tenant_id: UUID, sequence: int, hash_: str, at: datetime
    ) -> "Checkpoint":
        message = checkpoint_message(tenant_id, sequence, hash_, at, signer.key_id)
        return cls(tenant_id, sequence, hash_, at, signer.key_id, signer.sign(message))

    def message(self) -> bytes:
        return checkpoint_message(
            self.tenant_id, self.sequence, self.hash, self.created_at, self.key_id
        )

    def problem(self, public_keys: dict[str, str]) -> str | None:
        """Why this checkpoint cannot be trusted, or None when its signature holds."""
        public = public_keys.get(self.key_id)
        if public is None:
            return f"the checkpoint at sequence {self.sequence} is signed by an unknown key"
        if not verify_signature(public, self.signature, self.message()):
            return f"the checkpoint at sequence {self.sequence} has an invalid signature"
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "tenant_id": str(self.tenant_id),
            "sequence": self.sequence,
            "hash": self.hash,
            "created_at": self.created_at.isoformat(),
            "key_id": self.key_id,
            "signature": self.signature,
        }


class CheckpointRepository:
    """One tenant's checkpoints and the deletion of its oldest audit rows."""

    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def latest(self) -> Checkpoint | None:
        row = await self.session.scalar(
            select(AuditCheckpoint)
            .where(AuditCheckpoint.tenant_id == self.tenant_id)
            .order_by(AuditCheckpoint.sequence.desc())
            .limit(1)
        )
        if row is None:
            return None
        return Checkpoint(
            row.tenant_id, row.sequence, row.hash, row.created_at, row.key_id, row.signature
        )

    async def oldest_rows_before(self, cutoff: datetime, limit: int) -> Sequence[Row[Any]]:
        """The oldest rows created before `cutoff`, in chain order, as plain rows.

        Time follows the chain within a tenant (it is taken under the head's lock), so these
        are a prefix of the remaining chain.
        """
        query = (
            select(*AuditLog.__table__.columns)
            .where(AuditLog.tenant_id == self.tenant_id, AuditLog.created_at < cutoff)
            .order_by(AuditLog.sequence)
            .limit(limit)
        )
        return (await self.session.execute(query)).all()

    async def prune_through(self, checkpoint: Checkpoint) -> int:
        """Store `checkpoint`, then delete the rows up to its sequence (one transaction); their
        stream events that the stream still holds (a destination has yet to deliver them) are
        kept in `stream_events`."""
        assert checkpoint.tenant_id == self.tenant_id
        self.session.add(
            AuditCheckpoint(
                tenant_id=self.tenant_id,
                sequence=checkpoint.sequence,
                hash=checkpoint.hash,
                created_at=checkpoint.created_at,
                key_id=checkpoint.key_id,
                signature=checkpoint.signature,
            )
        )
        await self.session.flush()
        result = await self.session.execute(
            delete(AuditLog)
            .where(AuditLog.tenant_id == self.tenant_id, AuditLog.sequence <= checkpoint.sequence)
            .returning(*AuditLog.__table__.columns)
            .execution_options(synchronize_session=False)
        )
        deleted = [dict(row._mapping) for row in result]
        # an audit row is its stream event: one the stream still holds stays in it
        connection = await self.session.connection()
        await streamlog.keep_deleted(
            connection, self.tenant_id, deleted, "created_at", stream_entry
        )
        return len(deleted)

    async def lowest_sequence_through(self, sequence: int) -> int | None:
        """The lowest sequence still stored at or below `sequence` (None when all are gone)."""
        value = await self.session.scalar(
            select(func.min(AuditLog.sequence)).where(
                AuditLog.tenant_id == self.tenant_id, AuditLog.sequence <= sequence
            )
        )
        return int(value) if value is not None else None
