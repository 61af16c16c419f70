"""The hash chain: verification, tampering found by editing rows in SQL, and concurrent writers."""

import asyncio
from collections.abc import Awaitable, Callable
from itertools import pairwise
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app import cli
from app.audits.chain import row_hash
from app.audits.models import AuditChainHead, AuditLog
from app.audits.repository import AuditRepository
from app.audits.verify import ChainVerifier
from app.core.config import Settings, get_settings
from app.core.db import new_id, utcnow
from app.core.tenancy import tenant_session
from tests.audits.conftest import AUDITS, Record
from tests.conftest import TenantHandle, create_tenant

VERIFY = f"{AUDITS}/verify"
Headers = Callable[[list[str]], Awaitable[dict[str, str]]]


async def verify(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    response = await client.get(VERIFY, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def execute(engine: AsyncEngine, statement: Any) -> None:
    """Change stored rows directly, as someone with database access could."""
    async with engine.begin() as connection:
        await connection.execute(statement)


async def stored_row(engine: AsyncEngine, tenant: TenantHandle, sequence: int) -> dict[str, Any]:
    query = select(*AuditLog.__table__.columns).where(
        AuditLog.tenant_id == UUID(tenant.id), AuditLog.sequence == sequence
    )
    async with engine.connect() as connection:
        return dict((await connection.execute(query)).one()._mapping)


def of(tenant: TenantHandle, sequence: int) -> Any:
    return (AuditLog.tenant_id == UUID(tenant.id)) & (AuditLog.sequence == sequence)


@pytest.fixture
async def chain(tenant: TenantHandle, record: Record) -> list[dict[str, Any]]:
    """Five recorded rows after the tenant's own two (tenant created, first key issued)."""
    return [await record(tenant, resource_id=f"c-{i}", after={"i": i + 1}) for i in range(5)]


class TestVerify:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(VERIFY)).status_code == 401

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        response = await client.get(VERIFY, headers=await scoped_headers(["write"]))
        assert response.status_code == 403

    async def test_valid_chain(
        self, client: httpx.AsyncClient, tenant: TenantHandle, chain: list[dict[str, Any]]
    ) -> None:
        result = await verify(client, tenant)
        assert result == {
            "valid": True,
            "checked": 7,
            "head_sequence": 7,
            "head_hash": chain[-1]["hash"],
            "first_invalid_sequence": None,
            "first_invalid_id": None,
            "reason": None,
            "pruned_through": 0,
            "checkpoint": None,
        }
        assert [row["sequence"] for row in chain] == [3, 4, 5, 6, 7]
        assert all(b["prev_hash"] == a["hash"] for a, b in pairwise(chain))

    async def test_covers_only_the_callers_chain(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle,
        chain: list[dict[str, Any]], record: Record,
    ) -> None:  # fmt: skip
        await record(other_tenant)
        assert (await verify(client, other_tenant))["checked"] == 3
        assert (await verify(client, tenant))["checked"] == 7

    async def test_an_edited_row(
        self, client: httpx.AsyncClient, engine: AsyncEngine, tenant: TenantHandle,
        chain: list[dict[str, Any]],
    ) -> None:  # fmt: skip
        await execute(engine, update(AuditLog).where(of(tenant, 5)).values(user_id="mallory"))
        result = await verify(client, tenant)
        assert result["valid"] is False
        assert result["first_invalid_sequence"] == 5
        assert result["first_invalid_id"] == chain[2]["id"]
        assert result["checked"] == 4
        assert "does not match its hash" in result["reason"]

    async def test_edited_changes(
        self, client: httpx.AsyncClient, engine: AsyncEngine, tenant: TenantHandle,
        chain: list[dict[str, Any]],
    ) -> None:  # fmt: skip
        changes = {**chain[0]["changes"], "after": {"i": 999}}
        await execute(engine, update(AuditLog).where(of(tenant, 3)).values(changes=changes))
        result = await verify(client, tenant)
        assert (result["valid"], result["first_invalid_sequence"]) == (False, 3)

    async def test_a_row_edited_and_rehashed_breaks_the_next_link(
        self, client: httpx.AsyncClient, engine: AsyncEngine, tenant: TenantHandle,
        chain: list[dict[str, Any]],
    ) -> None:  # fmt: skip
        row = await stored_row(engine, tenant, 4)
        row["user_id"] = "mallory"
        forged = row_hash(row["prev_hash"], row)
        await execute(
            engine, update(AuditLog).where(of(tenant, 4)).values(user_id="mallory", hash=forged)
        )
        result = await verify(client, tenant)
        assert (result["valid"], result["first_invalid_sequence"]) == (False, 5)
        assert result["reason"] == "prev_hash does not match the hash of row 4"

    async def test_a_deleted_row(
        self, client: httpx.AsyncClient, engine: AsyncEngine, tenant: TenantHandle,
        chain: list[dict[str, Any]],
    ) -> None:  # fmt: skip
        await execute(engine, delete(AuditLog).where(of(tenant, 4)))
        result = await verify(client, tenant)
        assert result["valid"] is False
        assert result["first_invalid_sequence"] == 5
        assert result["first_invalid_id"] == chain[2]["id"]
        assert result["reason"] == "expected sequence 4 but found 5; sequences 4..4 are missing"

    async def test_the_last_row_deleted(
        self, client: httpx.AsyncClient, engine: AsyncEngine, tenant: TenantHandle,
        chain: list[dict[str, Any]],
    ) -> None:  # fmt: skip
        await execute(engine, delete(AuditLog).where(of(tenant, 7)))
        result = await verify(client, tenant)
        assert result["valid"] is False
        assert (result["first_invalid_sequence"], result["first_invalid_id"]) == (7, None)
        assert "the chain head records sequence 7 but the last row is 6" in result["reason"]

    async def test_an_inserted_row(
        self, client: httpx.AsyncClient, engine: AsyncEngine, tenant: TenantHandle,
        chain: list[dict[str, Any]],
    ) -> None:  # fmt: skip
        row = await stored_row(engine, tenant, 7)
        forged_id = new_id()
        row.update(id=forged_id, sequence=8, prev_hash=row["hash"], created_at=utcnow())
        row["user_id"] = "mallory"
        row["hash"] = row_hash(row["prev_hash"], row)
        await execute(engine, insert(AuditLog.__table__).values(row))
        result = await verify(client, tenant)
        assert result["valid"] is False
        assert (result["first_invalid_sequence"], result["first_invalid_id"]) == (8, str(forged_id))
        assert "beyond the chain head" in result["reason"]
        assert result["checked"] == 7

    async def test_a_row_inserted_in_the_middle(
        self, client: httpx.AsyncClient, engine: AsyncEngine, tenant: TenantHandle,
        chain: list[dict[str, Any]],
    ) -> None:  # fmt: skip
        # Making room for a row means renumbering the later ones, which their hashes cover.
        for sequence in (7, 6, 5):
            await execute(
                engine, update(AuditLog).where(of(tenant, sequence)).values(sequence=sequence + 1)
            )
        row = await stored_row(engine, tenant, 4)
        row.update(id=new_id(), sequence=5, prev_hash=row["hash"], created_at=utcnow())
        row["hash"] = row_hash(row["prev_hash"], row)
        await execute(engine, insert(AuditLog.__table__).values(row))
        result = await verify(client, tenant)
        assert (result["valid"], result["first_invalid_sequence"]) == (False, 6)

    async def test_a_tampered_head(
        self, client: httpx.AsyncClient, engine: AsyncEngine, tenant: TenantHandle,
        chain: list[dict[str, Any]],
    ) -> None:  # fmt: skip
        head = AuditChainHead.tenant_id == UUID(tenant.id)
        await execute(engine, update(AuditChainHead).where(head).values(hash="f" * 64))
        result = await verify(client, tenant)
        assert result["valid"] is False
        assert (result["first_invalid_sequence"], result["head_hash"]) == (7, "f" * 64)
        assert result["reason"] == "the chain head's hash does not match row 7"

    async def test_rows_without_a_head(
        self, client: httpx.AsyncClient, engine: AsyncEngine, tenant: TenantHandle,
        chain: list[dict[str, Any]],
    ) -> None:  # fmt: skip
        head = AuditChainHead.tenant_id == UUID(tenant.id)
        await execute(engine, delete(AuditChainHead).where(head))
        result = await verify(client, tenant)
        assert result["valid"] is False
        assert result["reason"] == "the chain has 7 rows but no head record"


@pytest.mark.parametrize("chunk_rows", [1, 2, 7, 500])
async def test_verification_reads_in_chunks(
    app: Any, engine: AsyncEngine, tenant: TenantHandle, chain: list[dict[str, Any]],
    chunk_rows: int,
) -> None:  # fmt: skip
    async with tenant_session(app.state.sessionmaker, UUID(tenant.id)) as session:
        repository = AuditRepository(session, UUID(tenant.id))
        valid = await ChainVerifier(repository, chunk_rows).run()
        assert (valid.valid, valid.checked, valid.head_sequence) == (True, 7, 7)
    await execute(engine, delete(AuditLog).where(of(tenant, 3)))
    async with tenant_session(app.state.sessionmaker, UUID(tenant.id)) as session:
        repository = AuditRepository(session, UUID(tenant.id))
        broken = await ChainVerifier(repository, chunk_rows).run()
        assert (broken.valid, broken.checked, broken.first_invalid_sequence) == (False, 2, 4)


class TestConcurrentWriters:
    async def _post_concurrently(
        self, app: Any, tenant: TenantHandle, clients: int, posts: int
    ) -> None:
        async def writer(n: int) -> None:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for i in range(posts):
                    body = {"action": "create", "resource_type": "load", "resource_id": f"{n}-{i}"}
                    response = await client.post(AUDITS, json=body, headers=tenant.headers)
                    assert response.status_code == 201, response.text

        await asyncio.gather(*(writer(n) for n in range(clients)))

    async def _sequences(self, engine: AsyncEngine, tenant: TenantHandle) -> list[int]:
        query = (
            select(AuditLog.sequence)
            .where(AuditLog.tenant_id == UUID(tenant.id))
            .order_by(AuditLog.sequence)
        )
        async with engine.connect() as connection:
            return list((await connection.scalars(query)).all())

    async def test_200_posts_from_20_clients_on_postgresql(
        self, app: Any, backend: str, client: httpx.AsyncClient, engine: AsyncEngine,
        tenant: TenantHandle, other_tenant: TenantHandle,
    ) -> None:  # fmt: skip
        if backend == "sqlite":
            pytest.skip("SQLite serialises the app's writes on its one connection")

        async def verify_while_writing() -> list[dict[str, Any]]:
            results = []
            for _ in range(10):
                await asyncio.sleep(0.05)
                results.append(await verify(client, tenant))
            return results

        *_, verified = await asyncio.gather(
            self._post_concurrently(app, tenant, clients=20, posts=10),
            self._post_concurrently(app, other_tenant, clients=4, posts=5),
            verify_while_writing(),
        )
        assert all(result["valid"] for result in verified), verified
        # 2 rows from creating the tenant and its first key, then the 200 posts.
        assert await self._sequences(engine, tenant) == list(range(1, 203))
        assert await self._sequences(engine, other_tenant) == list(range(1, 23))
        result = await verify(client, tenant)
        assert (result["valid"], result["checked"]) == (True, 202), result

    async def test_concurrent_posts(
        self, app: Any, client: httpx.AsyncClient, engine: AsyncEngine, tenant: TenantHandle
    ) -> None:
        await self._post_concurrently(app, tenant, clients=5, posts=6)
        assert await self._sequences(engine, tenant) == list(range(1, 33))
        assert (await verify(client, tenant))["valid"] is True

    async def test_new_tenants_created_concurrently(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        tenants = await asyncio.gather(*(create_tenant(client, f"Burst {i}") for i in range(5)))
        for tenant in tenants:
            assert await self._sequences(engine, tenant) == [1, 2]
            assert (await verify(client, tenant))["valid"] is True
        async with engine.connect() as connection:
            ids = [UUID(t.id) for t in tenants]
            heads = await connection.scalar(
                select(func.count()).where(AuditChainHead.tenant_id.in_(ids))
            )
        assert heads == 5


class TestVerifyCommand:
    async def run(self, monkeypatch: pytest.MonkeyPatch, settings: Settings, *args: str) -> int:
        monkeypatch.setenv("DATABASE_URL", settings.database_url)
        monkeypatch.setenv("LOG_LEVEL", "warning")
        get_settings.cache_clear()
        try:
            return await asyncio.to_thread(cli.main, ["verify", *args])
        finally:
            get_settings.cache_clear()

    async def test_valid_chain(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        settings: Settings, tenant: TenantHandle, chain: list[dict[str, Any]],
    ) -> None:  # fmt: skip
        assert await self.run(monkeypatch, settings, tenant.slug) == 0
        out = capsys.readouterr().out
        assert out.strip() == (
            f"{tenant.slug} ({tenant.id}): valid, 7 rows, head 7 {chain[-1]['hash']}"
        )
        assert await self.run(monkeypatch, settings, tenant.id, "--json") == 0
        assert '"valid": true' in capsys.readouterr().out

    async def test_broken_chain_exits_1(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        settings: Settings, engine: AsyncEngine, tenant: TenantHandle,
        other_tenant: TenantHandle, chain: list[dict[str, Any]],
    ) -> None:  # fmt: skip
        await execute(engine, delete(AuditLog).where(of(tenant, 6)))
        assert await self.run(monkeypatch, settings, tenant.slug) == 1
        captured = capsys.readouterr()
        assert f"{tenant.slug} ({tenant.id}): INVALID at sequence 7" in captured.out
        assert captured.err == f"error: audit chain broken for 1 tenant(s): {tenant.slug}\n"
        # Without a tenant, every chain is verified: this one is named among the broken ones.
        assert await self.run(monkeypatch, settings) == 1
        captured = capsys.readouterr()
        assert f"{other_tenant.slug} ({other_tenant.id}): valid" in captured.out
        assert tenant.slug in captured.err and len(captured.err.splitlines()) == 1

    async def test_unknown_tenant(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        settings: Settings,
    ) -> None:  # fmt: skip
        assert await self.run(monkeypatch, settings, "no-such-tenant") == 1
        assert capsys.readouterr().err == "error: tenant 'no-such-tenant' not found\n"
