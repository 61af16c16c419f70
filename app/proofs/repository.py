"""SQL for one tenant's Merkle log: its size, stored subtree hashes, leaves by event, kept heads
(and their stream events).

The log's size is the audit chain's head sequence: both move in the transaction that appends
events (app/proofs/tree.py), so a size read from the head always has its nodes stored.
"""

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audits import merkle
from app.audits.merkle_log import read_nodes
from app.audits.models import AuditChainHead, AuditMerkleNode
from app.core.db import new_id, upsert_insert
from app.proofs.heads import TreeHead
from app.proofs.models import AuditTreeHead
from app.streamlog import record as streamlog


class ProofRepository:
    """One tenant's Merkle log; every query is filtered by that tenant."""

    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def tree_size(self) -> int:
        size = await self.session.scalar(
            select(AuditChainHead.sequence).where(AuditChainHead.tenant_id == self.tenant_id)
        )
        return int(size or 0)

    async def nodes(self, keys: set[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
        return await read_nodes(self.session, self.tenant_id, keys)

    async def leaf_index(self, audit_id: UUID) -> int | None:
        """The leaf of an event, stored or pruned."""
        position = await self.session.scalar(
            select(AuditMerkleNode.position).where(
                AuditMerkleNode.tenant_id == self.tenant_id,
                AuditMerkleNode.audit_id == audit_id,
                AuditMerkleNode.level == 0,
            )
        )
        return int(position) if position is not None else None

    async def keep(self, head: TreeHead) -> bool:
        """Store a signed head; False when one of the same size is kept already (it stays: the
        older wins)."""
        dialect = (await self.session.connection()).dialect.name
        result = await self.session.execute(
            upsert_insert(dialect, AuditTreeHead)
            .values(**head.row())
            .on_conflict_do_nothing(index_elements=["tenant_id", "tree_size"])
        )
        return bool(getattr(result, "rowcount", 0))

    async def publish(self, payload: str) -> None:
        """Write a kept head (its JSON) to the tenant's stream, in the session's transaction:
        the log-stream destinations deliver it from there."""
        entry = streamlog.entry("tree_head", new_id(), payload)
        await streamlog.record(await self.session.connection(), self.tenant_id, [entry])

    async def latest_kept_size(self) -> int:
        size = await self.session.scalar(
            select(func.max(AuditTreeHead.tree_size)).where(
                AuditTreeHead.tenant_id == self.tenant_id
            )
        )
        return int(size or 0)

    async def kept(self, limit: int, before_size: int | None) -> Sequence[AuditTreeHead]:
        """Kept heads, largest (newest) first, below `before_size` when given."""
        query = select(AuditTreeHead).where(AuditTreeHead.tenant_id == self.tenant_id)
        if before_size is not None:
            query = query.where(AuditTreeHead.tree_size < before_size)
        query = query.order_by(AuditTreeHead.tree_size.desc()).limit(limit)
        return (await self.session.scalars(query)).all()
