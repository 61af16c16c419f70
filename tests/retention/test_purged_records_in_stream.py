"""A record's row is its stream event (app/streams/events.py): when retention deletes rows whose
events the stream still holds (a paused destination has not delivered them, or they are newer
than the stream's retention), the events stay in the stream, as they were, under their numbers;
events the stream has already passed are not brought back."""

from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import update

from app.core.auth import Actor
from app.core.db import utcnow
from app.streamlog.models import StreamHead
from app.streams.events import events_after
from tests.conftest import create_tenant
from tests.retention.conftest import Retained, record_actions, record_audits

ACTOR = Actor("test")


async def stream(retained: Retained, tenant_id: UUID) -> list[Any]:
    async with retained.app.state.maintenance_engine.connect() as connection:
        return await events_after(connection, tenant_id, 0, 10_000)


async def test_purged_rows_stay_in_the_stream_until_it_passes_them(retained: Retained) -> None:
    client = retained.client
    tenant = await create_tenant(client, "Purged Co")
    tenant_id = UUID(tenant.id)
    await record_actions(client, tenant, 4)
    await record_audits(client, tenant, 3, "purged")
    before = await stream(retained, tenant_id)
    recorded = [(e.seq, e.kind, e.payload) for e in before if e.kind in ("action", "audit")]
    counts = {kind: [k for _, k, _ in recorded].count(kind) for kind in ("action", "audit")}
    assert counts["action"] == 4
    assert counts["audit"] >= 3  # and the tenant's creation, audited

    cutoff = utcnow() + timedelta(seconds=1)
    for kind in ("action", "audit"):
        pruned = await retained.pruner.prune(tenant_id, f"{kind}s", cutoff, ACTOR)
        assert pruned.deleted >= counts[kind]  # audits: and the purge of actions, audited
    listed = await client.get("/api/v1/logs/actions", headers=tenant.headers)
    assert listed.json() == []  # the rows are gone …
    after = await stream(retained, tenant_id)
    kept = [(e.seq, e.kind, e.payload) for e in after if e.kind in ("action", "audit")]
    assert kept[: len(recorded)] == recorded  # … their events are not, as they were

    # once the stream has passed its events, a purge brings none back
    seen = {e.seq for e in after}
    await record_actions(client, tenant, 2)
    fresh = [e.seq for e in await stream(retained, tenant_id) if e.seq not in seen]
    assert len(fresh) == 2
    async with retained.app.state.maintenance_engine.begin() as connection:
        await connection.execute(
            update(StreamHead)
            .where(StreamHead.tenant_id == tenant_id)
            .values(pruned_through=max(fresh))
        )
    later = utcnow() + timedelta(seconds=1)
    assert (await retained.pruner.prune(tenant_id, "actions", later, ACTOR)).deleted == 2
    assert {e.seq for e in await stream(retained, tenant_id)}.isdisjoint(fresh)
