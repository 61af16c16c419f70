"""Audit events through group commit: concurrent writes of a tenant share commits, and the chain
loses, duplicates and forks nothing; an event the database refuses fails alone."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audits.chain import GENESIS_HASH
from app.audits.events import EventBuilder
from app.audits.models import AuditLog
from app.audits.recorder import AUDIT_EVENTS
from app.core.writer import GroupCommitWriter
from tests.audits.conftest import AUDITS
from tests.conftest import TenantHandle, create_tenant


async def stored_rows(engine: AsyncEngine, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's rows as stored, in chain order."""
    query = (
        select(*AuditLog.__table__.columns)
        .where(AuditLog.tenant_id == UUID(tenant_id))
        .order_by(AuditLog.sequence)
    )
    async with engine.connect() as connection:
        return [dict(row._mapping) for row in (await connection.execute(query)).all()]


def assert_whole_chain(rows: list[dict[str, Any]]) -> None:
    """Sequences 1..N without gap or repeat, each row following the one before (no fork)."""
    assert [row["sequence"] for row in rows] == list(range(1, len(rows) + 1))
    previous = GENESIS_HASH
    for row in rows:
        assert row["prev_hash"] == previous, f"row {row['sequence']} forks the chain"
        previous = row["hash"]
    assert len({row["hash"] for row in rows}) == len(rows)


async def verified(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    response = await client.get(f"{AUDITS}/verify", headers=tenant.headers)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def event(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "action": "update",
        "resource_type": "contact",
        "resource_id": f"c-{n % 7}",
        "before": {"n": n},
        "after": {"n": n + 1},
        **extra,
    }


async def test_concurrent_posts_extend_one_whole_chain(
    client: httpx.AsyncClient, tenant: TenantHandle, engine: AsyncEngine
) -> None:
    """200 concurrent POSTs of one tenant: every one 201, sequences without gap after the
    tenant's own self-audits, the chain verifies, and each answer is the row as stored."""
    before = len(await stored_rows(engine, tenant.id))  # the tenant's and its key's creation
    responses = await asyncio.gather(
        *(client.post(AUDITS, json=event(n), headers=tenant.headers) for n in range(200))
    )
    assert [r.status_code for r in responses] == [201] * 200
    rows = await stored_rows(engine, tenant.id)
    assert len(rows) == before + 200
    assert_whole_chain(rows)
    by_id = {str(row["id"]): row for row in rows}
    for response in responses:
        answer = response.json()
        row = by_id[answer["id"]]
        assert (answer["sequence"], answer["prev_hash"], answer["hash"]) == (
            row["sequence"],
            row["prev_hash"],
            row["hash"],
        )
        for field in ("changes", "metadata", "resource_id", "action", "user_id"):
            assert answer[field] == row[field]
    # time follows the chain
    times = [row["created_at"] for row in rows]
    assert times == sorted(times)
    result = await verified(client, tenant)
    total = before + 200
    assert (result["valid"], result["checked"], result["head_sequence"]) == (True, total, total)


@pytest.fixture
async def refusing_trigger(engine: AsyncEngine) -> AsyncIterator[str]:
    """A trigger that refuses audit rows of one resource id: a value the service's validation
    lets through and the database does not. Dropped after the test."""
    refused = f"refused-{uuid4().hex[:8]}"
    name = f"refuse_{uuid4().hex[:8]}"
    if engine.dialect.name == "postgresql":
        create = [
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.resource_id = '{refused}' THEN RAISE EXCEPTION 'refused'; END IF; "
            "RETURN NEW; END $$",
            f"CREATE TRIGGER {name} BEFORE INSERT ON audit_logs FOR EACH ROW "
            f"EXECUTE FUNCTION {name}()",
        ]
        drop = [f"DROP TRIGGER {name} ON audit_logs", f"DROP FUNCTION {name}()"]
    else:
        create = [
            f"CREATE TRIGGER {name} BEFORE INSERT ON audit_logs "
            f"WHEN NEW.resource_id = '{refused}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
        drop = [f"DROP TRIGGER {name}"]
    async with engine.begin() as connection:
        for statement in create:
            await connection.execute(text(statement))
    try:
        yield refused
    finally:
        async with engine.begin() as connection:
            for statement in drop:
                await connection.execute(text(statement))


async def test_a_refused_event_fails_alone(
    client: httpx.AsyncClient, tenant: TenantHandle, engine: AsyncEngine, refusing_trigger: str
) -> None:
    """Concurrent POSTs where two events are refused by the database: those two fail (500,
    no 2xx), every other one commits, and the chain has no gap where they would have been."""
    before = len(await stored_rows(engine, tenant.id))
    bodies = [event(n) for n in range(60)]
    bodies[17]["resource_id"] = bodies[41]["resource_id"] = refusing_trigger
    batch = {"events": [event(n) for n in range(100, 105)]}
    responses = await asyncio.gather(
        *(client.post(AUDITS, json=body, headers=tenant.headers) for body in bodies),
        client.post(f"{AUDITS}/batch", json=batch, headers=tenant.headers),
    )
    codes = [r.status_code for r in responses]
    assert codes[17] == codes[41] == 500
    assert [c for i, c in enumerate(codes) if i not in (17, 41)] == [201] * 59
    rows = await stored_rows(engine, tenant.id)
    assert len(rows) == before + 58 + 5
    assert refusing_trigger not in {row["resource_id"] for row in rows}
    assert_whole_chain(rows)
    assert (await verified(client, tenant))["valid"] is True


async def test_group_writer_retries_a_refused_write_alone(
    client: httpx.AsyncClient, app: Any, engine: AsyncEngine
) -> None:
    """One group of several tenants' writes, one of them for a tenant the database does not
    know (a foreign key refuses it): the group rolls back, is retried one write at a time, the
    refused write fails alone, and the others commit in their queue order, without gap."""
    first, second = await create_tenant(client, "G1"), await create_tenant(client, "G2")
    builder = EventBuilder(app.state.payload_rules)

    def events(tag: str, count: int) -> list[dict[str, Any]]:
        built = [builder.build("create", "doc", f"{tag}-{i}", None, {"i": i}) for i in range(count)]
        return [e for e in built if e is not None]

    before = [len(await stored_rows(engine, t.id)) for t in (first, second)]
    writer = GroupCommitWriter(engine, AUDIT_EVENTS, max_rows=5000)
    try:
        writes = [
            (UUID(first.id), events("a", 2)),
            (UUID(second.id), events("b", 3)),
            (uuid4(), events("ghost", 1)),  # no such tenant
            (UUID(first.id), events("c", 1)),
        ]
        results = await asyncio.gather(
            *(writer.write(tenant_id, built) for tenant_id, built in writes),
            return_exceptions=True,
        )
        assert isinstance(results[2], Exception)
        ok = [r for i, r in enumerate(results) if i != 2]
        assert all(isinstance(r, list) for r in ok)
        # the writes that committed got their rows, in their own order
        a, b = results[0], results[1]
        assert isinstance(a, list) and isinstance(b, list)
        assert [row["resource_id"] for row in a] == ["a-0", "a-1"]
        assert [row["sequence"] for row in b] == [before[1] + n for n in (1, 2, 3)]
        # a second, clean group continues each chain right after the numbers taken
        (later,) = await asyncio.gather(writer.write(UUID(first.id), events("d", 2)))
        assert [row["sequence"] for row in later] == [before[0] + 4, before[0] + 5]
    finally:
        await writer.close()
    rows = await stored_rows(engine, first.id)
    ours = [row["resource_id"] for row in rows[before[0] :]]
    assert ours == ["a-0", "a-1", "c-0", "d-0", "d-1"]
    assert_whole_chain(rows)
    assert_whole_chain(await stored_rows(engine, second.id))
    assert (await verified(client, first))["valid"] is True
