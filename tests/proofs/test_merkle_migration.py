"""Migration 0019 counts existing audit events into the Merkle log, one tenant at a time, and
stands in for events that retention deleted before it with a leaf of 32 zero bytes."""

import os
from datetime import UTC, datetime
from uuid import uuid4

from sqlalchemy import insert, inspect, select

from app.audits.models import AuditChainHead, AuditLog, AuditMerkleNode
from app.core import migrations
from app.core.config import Settings
from app.core.db import create_engine
from app.tenants.models import Tenant
from tests.proofs.rfc9162 import mth

BEFORE = "0014_text_search_under_rls"


async def test_existing_events_become_leaves(empty_database_url: str) -> None:
    engine = create_engine(Settings(database_url=empty_database_url), as_owner=True)
    tenant_id, now = uuid4(), datetime.now(UTC)
    hashes = [os.urandom(32) for _ in range(10)]
    ids = [uuid4() for _ in range(10)]
    try:
        await migrations.upgrade(engine, BEFORE)
        async with engine.begin() as connection:
            await connection.execute(
                insert(Tenant.__table__).values(
                    id=tenant_id, name="T", slug=f"t-{tenant_id.hex[:8]}", created_at=now,
                    updated_at=now,
                )
            )  # fmt: skip
            # events 1 and 2 were pruned before the upgrade; 3 to 10 are stored
            await connection.execute(
                insert(AuditLog.__table__),
                [
                    dict(
                        id=ids[i], tenant_id=tenant_id, sequence=i + 1, action="create",
                        resource_type="r", resource_id=str(i), changes={}, metadata={},
                        created_at=now, prev_hash="0" * 64, hash=hashes[i].hex(),
                    )
                    for i in range(2, 10)
                ],
            )  # fmt: skip
            await connection.execute(
                insert(AuditChainHead.__table__).values(
                    tenant_id=tenant_id, sequence=10, hash=hashes[9].hex(), updated_at=now
                )
            )
        await migrations.upgrade(engine)

        async with engine.connect() as connection:
            nodes = {
                (row.level, row.position): (bytes(row.hash), row.audit_id)
                for row in await connection.execute(
                    select(AuditMerkleNode).where(AuditMerkleNode.tenant_id == tenant_id)
                )
            }
        data = [bytes(32), bytes(32), *hashes[2:]]
        assert sorted(pos for level, pos in nodes if level == 0) == list(range(10))
        for position in range(10):
            assert nodes[(0, position)] == (
                mth([data[position]]),
                ids[position] if position >= 2 else None,
            )
        assert nodes[(3, 0)][0] == mth(data[:8])
        assert nodes[(1, 4)][0] == mth(data[8:10])
        assert len(nodes) == 10 + 5 + 2 + 1  # leaves, then the complete pairs, fours, eight

        await migrations.downgrade(engine, BEFORE)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert "audit_merkle_nodes" not in tables and "audit_tree_heads" not in tables
    finally:
        await engine.dispose()
