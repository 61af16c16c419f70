"""ProofService: tree heads, inclusion and consistency proofs of a tenant's audit events.

Every answer is computed from the stored perfect subtrees (app/proofs/merkle.py): the proof
functions first name the nodes they need, those are read in one query, then the proof is
computed; so a proof costs one indexed read of O(log n) rows whatever the log's size, and
events deleted by retention keep their proofs.
"""

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.audits import merkle
from app.audits.signing import Signer
from app.core.db import utcnow
from app.core.errors import BadRequest, NotFound
from app.proofs.heads import TreeHead
from app.proofs.repository import ProofRepository
from app.proofs.schemas import ConsistencyProof, InclusionProof, TreeHeadRead

T = TypeVar("T")


class ProofService:
    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.repository = ProofRepository(session, tenant_id)
        self.tenant_id = tenant_id

    async def _compute(self, compute: Callable[[merkle.Lookup], T]) -> T:
        nodes = await self.repository.nodes(merkle.needed_nodes(compute))
        return compute(nodes.__getitem__)

    async def root(self, size: int) -> bytes:
        return await self._compute(lambda lookup: merkle.root(lookup, size))

    async def current_head(self, signer: Signer, at: datetime | None = None) -> TreeHead:
        """The tree as it is now, signed."""
        size = await self.repository.tree_size()
        root = await self.root(size)
        return TreeHead.signed(signer, self.tenant_id, size, root, at or utcnow())

    async def keep_current_head(self, signer: Signer) -> TreeHead | None:
        """Sign and keep the current head, unless one of this size is kept already."""
        head = await self.current_head(signer)
        return head if await self.keep(head) else None

    async def keep(self, head: TreeHead) -> bool:
        """Keep a signed head, and write it to the tenant's stream (a `tree_head` event, its
        JSON as GET /tree-head answers it) in the same transaction, so that every kept head
        leaves through the tenant's log-stream destinations. False, and nothing written, for an
        empty tree or one no larger than a head kept already."""
        if head.tree_size == 0 or head.tree_size <= await self.repository.latest_kept_size():
            return False
        if not await self.repository.keep(head):
            return False  # a worker kept this size meanwhile, and published it
        await self.repository.publish(TreeHeadRead(**head.as_json()).model_dump_json())
        return True

    async def kept_heads(self, limit: int, before_size: int | None) -> list[TreeHead]:
        return [TreeHead.of_row(row) for row in await self.repository.kept(limit, before_size)]

    async def _size_at_most_current(self, size: int, name: str) -> None:
        current = await self.repository.tree_size()
        if size > current:
            raise BadRequest(f"{name}={size} is beyond the log's current size {current}")

    async def inclusion(self, audit_id: UUID, tree_size: int | None) -> InclusionProof:
        index = await self.repository.leaf_index(audit_id)
        if index is None:
            raise NotFound("Audit event not found")
        if tree_size is None:
            tree_size = await self.repository.tree_size()
        else:
            await self._size_at_most_current(tree_size, "tree_size")
        if tree_size <= index:
            raise BadRequest(
                f"tree_size={tree_size} does not hold this event (its leaf index is {index}; "
                f"ask for a tree_size above it)"
            )
        path, root, leaf = await self._compute(
            lambda lookup: (
                merkle.inclusion_path(lookup, index, tree_size),
                merkle.root(lookup, tree_size),
                lookup((0, index)),
            )
        )
        return InclusionProof(
            leaf_index=index,
            tree_size=tree_size,
            leaf_hash=leaf.hex(),
            audit_path=[step.hex() for step in path],
            root_hash=root.hex(),
        )

    async def consistency(self, first: int, second: int) -> ConsistencyProof:
        if first > second:
            raise BadRequest(f"first={first} is above second={second}")
        await self._size_at_most_current(second, "second")
        proof = await self._compute(lambda lookup: merkle.consistency_proof(lookup, first, second))
        return ConsistencyProof(first=first, second=second, proof=[step.hex() for step in proof])
