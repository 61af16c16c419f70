"""Appending audit events to their tenant's Merkle log, in the transaction that stores them.

Called once per tenant by the chain extension (repository.py `extend_tenant_chain`) with the
rows it just chained: reads the part of the tree's frontier that the rows complete (by primary
key; on average one row for one event, and no read at all for half of them), then inserts the
new leaves and the subtrees they complete with one plain INSERT executed for many rows, under
the same chain-head lock, so the log can never disagree with the chain. The proofs built on
it (tree heads, inclusion, consistency) are app/proofs/.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Table, and_, bindparam, insert, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.audits import merkle
from app.audits.models import AuditMerkleNode

NODES = cast(Table, AuditMerkleNode.__table__)


# One statement shape whatever the keys (an expanding parameter): compiled once, prepared once.
_FRONTIER_KEYS = tuple_(NODES.c.level, NODES.c.position).in_(bindparam("keys", expanding=True))


def _where_keys(tenant_id: UUID, keys: Iterable[merkle.NodeKey]) -> Any:
    return and_(
        NODES.c.tenant_id == tenant_id,
        or_(*(and_(NODES.c.level == level, NODES.c.position == pos) for level, pos in keys)),
    )


async def append_events(
    connection: AsyncConnection, tenant_id: UUID, size: int, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Add `rows` (stored audit rows, in sequence order, following `size` earlier events) as
    leaves of the tenant's tree; their leaf data is the raw bytes of each row's `hash`."""
    keys = merkle.frontier_keys(size, len(rows))
    frontier: dict[int, bytes] = {}
    if keys:
        frontier_query = select(NODES.c.level, NODES.c.hash).where(
            NODES.c.tenant_id == tenant_id, _FRONTIER_KEYS
        )
        found = await connection.execute(frontier_query, {"keys": keys})
        frontier = {level: bytes(value) for level, value in found}
    added = merkle.append_leaves(
        frontier, size, (merkle.leaf_hash(bytes.fromhex(row["hash"])) for row in rows)
    )
    ids = {size + offset: row["id"] for offset, row in enumerate(rows)}
    values = [
        {
            "tenant_id": tenant_id,
            "level": level,
            "position": position,
            "hash": value,
            "audit_id": ids[position] if level == 0 else None,
        }
        for level, position, value in added
    ]
    # a plain INSERT of one row, executed for many: one prepared statement, pipelined
    await connection.execute(insert(NODES), values)


async def read_nodes(
    session: AsyncSession, tenant_id: UUID, keys: set[merkle.NodeKey]
) -> dict[merkle.NodeKey, bytes]:
    """The stored nodes `keys` of a tenant's tree, in one query."""
    if not keys:
        return {}
    found = await session.execute(
        select(NODES.c.level, NODES.c.position, NODES.c.hash).where(_where_keys(tenant_id, keys))
    )
    return {(level, pos): bytes(value) for level, pos, value in found}
