"""Audit events with a correlation id: stored, listed, filtered, and covered by the chain."""

from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audits.chain import row_hash
from app.audits.models import AuditLog
from tests.audits.conftest import AUDITS, Record
from tests.conftest import TenantHandle


async def execute(engine: AsyncEngine, statement: Any) -> None:
    async with engine.begin() as connection:
        await connection.execute(statement)


async def verify(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    response = await client.get(f"{AUDITS}/verify", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


class TestCorrelationId:
    async def test_is_stored_and_returned(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        row = await record(tenant, correlation_id="inc-42")
        assert row["correlation_id"] == "inc-42"
        fetched = await client.get(f"{AUDITS}/{row['id']}", headers=tenant.headers)
        assert fetched.json()["correlation_id"] == "inc-42"
        plain = await record(tenant, resource_id="c-2")
        assert plain["correlation_id"] is None

    async def test_filters_the_list_within_the_tenant(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle,
        record: Record,
    ) -> None:  # fmt: skip
        ours = [
            await record(tenant, resource_id=f"c-{i}", correlation_id="inc-7") for i in range(3)
        ]
        await record(tenant, resource_id="c-x", correlation_id="inc-8")
        await record(other_tenant, correlation_id="inc-7")
        response = await client.get(
            AUDITS, params={"correlation_id": "inc-7"}, headers=tenant.headers
        )
        assert [r["id"] for r in response.json()] == [r["id"] for r in reversed(ours)]

    async def test_bad_values_are_422(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        for value in ("", "x" * 256, "nul\u0000byte"):
            body = {"action": "create", "resource_type": "t", "resource_id": "1",
                    "correlation_id": value}  # fmt: skip
            response = await client.post(AUDITS, json=body, headers=tenant.headers)
            assert response.status_code == 422, value
            assert "correlation_id" in str(response.json()["detail"])

    async def test_chain_with_and_without_it_verifies(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        for i in range(4):
            await record(tenant, resource_id=f"c-{i}", correlation_id="inc-1" if i % 2 else None)
        result = await verify(client, tenant)
        assert result["valid"] is True and result["checked"] == 6

    async def test_rows_without_it_hash_as_before(self) -> None:
        content = {
            "id": UUID(int=1), "tenant_id": UUID(int=2), "sequence": 1, "action": "create",
            "resource_type": "t", "resource_id": "1", "user_id": None, "changes": {},
            "ip_address": None, "user_agent": None, "metadata": {}, "created_at": None,
        }  # fmt: skip
        before_the_field = row_hash("0" * 64, content)
        assert row_hash("0" * 64, {**content, "correlation_id": None}) == before_the_field
        assert row_hash("0" * 64, {**content, "correlation_id": "inc-1"}) != before_the_field

    async def test_editing_it_breaks_the_chain(
        self, client: httpx.AsyncClient, engine: AsyncEngine, tenant: TenantHandle,
        record: Record,
    ) -> None:  # fmt: skip
        tagged = await record(tenant, correlation_id="inc-1")
        await record(tenant, resource_id="c-2")
        where = AuditLog.id == UUID(tagged["id"])
        await execute(engine, update(AuditLog).where(where).values(correlation_id="inc-2"))
        result = await verify(client, tenant)
        assert result["valid"] is False
        assert result["first_invalid_sequence"] == tagged["sequence"]
        await execute(engine, update(AuditLog).where(where).values(correlation_id=None))
        assert (await verify(client, tenant))["first_invalid_sequence"] == tagged["sequence"]
        await execute(engine, update(AuditLog).where(where).values(correlation_id="inc-1"))
        assert (await verify(client, tenant))["valid"] is True
