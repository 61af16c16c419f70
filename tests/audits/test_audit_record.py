"""POST /api/v1/logs/audits: recording a change, its diff, redaction, and bad input."""

import json
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audits.models import AuditLog
from app.core.redact import REDACTED
from tests.audits.conftest import AUDITS, Record
from tests.conftest import TenantHandle, first_error

Headers = Callable[[list[str]], Awaitable[dict[str, str]]]


async def tenant_rows(client: httpx.AsyncClient, tenant: TenantHandle) -> list[dict[str, Any]]:
    response = await client.get(AUDITS, params={"limit": 1000}, headers=tenant.headers)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


class TestRecordAudit:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        body = {"action": "create", "resource_type": "contact", "resource_id": "1"}
        response = await client.post(AUDITS, json=body)
        assert response.status_code == 401

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        body = {"action": "create", "resource_type": "contact", "resource_id": "1"}
        response = await client.post(AUDITS, json=body, headers=await scoped_headers(["read"]))
        assert response.status_code == 403
        assert "write" in response.json()["detail"]

    async def test_created_with_every_field(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = {
            "action": "update",
            "resource_type": "tenant",
            "resource_id": "t-42",
            "user_id": "admin@example.com",
            "before": {"name": "Old Name"},
            "after": {"name": "New Name"},
            "ip_address": "192.168.1.100",
            "user_agent": "curl/8.5",
            "metadata": {"reason": "rebrand"},
        }
        response = await client.post(AUDITS, json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
        row = response.json()
        assert row["tenant_id"] == tenant.id
        for field in ("action", "resource_type", "resource_id", "user_id", "user_agent"):
            assert row[field] == body[field]
        assert row["ip_address"] == "192.168.1.100"
        assert row["metadata"] == {"reason": "rebrand"}
        assert row["changes"] == {
            "before": {"name": "Old Name"},
            "after": {"name": "New Name"},
            "diff": [{"path": "name", "kind": "changed", "old": "Old Name", "new": "New Name"}],
        }
        assert row["sequence"] >= 1 and len(row["hash"]) == 64 and len(row["prev_hash"]) == 64
        fetched = await client.get(f"{AUDITS}/{row['id']}", headers=tenant.headers)
        assert fetched.json() == row

    async def test_minimal_event_of_any_verb(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = {"action": "export", "resource_type": "report", "resource_id": "r-1"}
        response = await client.post(AUDITS, json=body, headers=tenant.headers)
        assert response.status_code == 201
        row = response.json()
        assert row["changes"] == {"before": None, "after": None, "diff": []}
        assert row["user_id"] is None and row["ip_address"] is None
        assert row["metadata"] == {}

    async def test_diff_on_nested_and_list_values(
        self, tenant: TenantHandle, record: Record
    ) -> None:
        row = await record(
            tenant,
            before={"profile": {"name": "Ada", "langs": ["en"]}, "vip": False, "old": 1},
            after={"profile": {"name": "Ada", "langs": ["en", "fr"]}, "vip": True, "new": 2},
        )
        assert row["changes"]["diff"] == [
            {"path": "new", "kind": "added", "old": None, "new": 2},
            {"path": "old", "kind": "removed", "old": 1, "new": None},
            {"path": "profile.langs", "kind": "changed", "old": ["en"], "new": ["en", "fr"]},
            {"path": "vip", "kind": "changed", "old": False, "new": True},
        ]

    async def test_update_without_changes_writes_nothing(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        before = len(await tenant_rows(client, tenant))
        body = {
            "action": "update",
            "resource_type": "contact",
            "resource_id": "1",
            "before": {"a": 1, "b": {"c": [1, 2]}},
            "after": {"b": {"c": [1, 2]}, "a": 1.0},
        }
        response = await client.post(AUDITS, json=body, headers=tenant.headers)
        assert response.status_code == 200
        assert response.json() == {
            "recorded": False,
            "detail": "no changes: before equals after, nothing was recorded",
        }
        assert len(await tenant_rows(client, tenant)) == before

    async def test_create_and_delete_are_recorded_without_before_or_after(
        self, tenant: TenantHandle, record: Record
    ) -> None:
        created = await record(tenant, action="create", before=None, after={"a": 1})
        deleted = await record(tenant, action="delete", before={"a": 1}, after=None)
        assert created["changes"]["diff"] == [{"path": "a", "kind": "added", "old": None, "new": 1}]
        assert deleted["changes"]["diff"][0]["kind"] == "removed"

    async def test_secrets_are_redacted_before_storage(
        self, tenant: TenantHandle, record: Record, engine: AsyncEngine
    ) -> None:
        row = await record(
            tenant,
            before={"user": "ada", "password": "hunter2-old", "nested": {"apiKey": "sk-old"}},
            after={"user": "ada", "password": "hunter2-new", "nested": {"apiKey": "sk-new"}},
            metadata={"headers": {"Authorization": "Bearer abc.def"}},
        )
        assert row["changes"]["after"]["password"] == REDACTED
        assert row["changes"]["before"]["nested"]["apiKey"] == REDACTED
        assert row["metadata"]["headers"]["Authorization"] == REDACTED
        assert [e["path"] for e in row["changes"]["diff"]] == ["nested.apiKey", "password"]
        query = select(AuditLog.changes, AuditLog.metadata_).where(AuditLog.id == UUID(row["id"]))
        async with engine.connect() as connection:
            stored = (await connection.execute(query)).one()
        text = json.dumps(list(stored))
        for secret in ("hunter2-old", "hunter2-new", "sk-old", "sk-new", "abc.def"):
            assert secret not in text

    async def test_cannot_write_into_another_tenant(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        body = {"action": "create", "resource_type": "c", "resource_id": "1"}
        response = await client.post(
            AUDITS, json={**body, "tenant_id": other_tenant.id}, headers=tenant.headers
        )
        assert response.status_code == 422
        assert "tenant_id" in json.dumps(response.json()["detail"])

    async def test_numbers_roundtrip_and_the_chain_verifies(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        numbers = {"f": 0.1, "one": 1.0, "big": 1e20, "tiny": 1.5e-7, "neg": -0.0}
        numbers |= {"huge": 10**30 + 1, "exp": 2.5e16, "unicode": "日本 ✓ \u2028"}
        await record(tenant, before={"v": numbers}, after={"v": {**numbers, "f": 0.2}})
        verify = await client.get(f"{AUDITS}/verify", headers=tenant.headers)
        assert verify.json()["valid"] is True, verify.json()


def long(n: int) -> str:
    return "x" * n


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"action": None}, "action"),
        ({"action": ""}, "action"),
        ({"action": long(101)}, "action"),
        ({"resource_type": long(101)}, "resource_type"),
        ({"resource_id": long(256)}, "resource_id"),
        ({"user_id": long(256)}, "user_id"),
        ({"user_agent": long(1025)}, "user_agent"),
        ({"ip_address": "not-an-ip"}, "ip_address"),
        ({"before": [1, 2]}, "before"),
        ({"after": "text"}, "after"),
        ({"metadata": 5}, "metadata"),
        ({"unknown": 1}, "unknown"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, tenant: TenantHandle, change: dict[str, Any], field: str
) -> None:
    body = {"action": "create", "resource_type": "contact", "resource_id": "1", **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = await client.post(AUDITS, json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert field in json.dumps(response.json()["detail"])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"before": {"a": {"b": "x\\u0000y"}}}', "before.a.b: text must not contain NUL"),
        ('{"resource_id": "a\\u0000"}', "resource_id: text must not contain NUL"),
        ('{"after": {"\\ud800": 1}}', "after.\ud800: text must be valid Unicode"),
        ('{"after": {"x": NaN}}', "after.x: numbers must be finite"),
        ('{"metadata": {"x": 1e400}}', "metadata.x: numbers must be finite"),
    ],
)
async def test_values_a_database_cannot_keep_are_422(
    client: httpx.AsyncClient, tenant: TenantHandle, raw: str, message: str
) -> None:
    base = {"action": "create", "resource_type": "contact", "resource_id": "1"}
    overridden = json.loads(raw).keys()
    kept = json.dumps({k: v for k, v in base.items() if k not in overridden})
    body = kept[:-1] + ", " + raw[1:]
    response = await client.post(
        AUDITS, content=body, headers={**tenant.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert first_error(response).startswith(message)


async def test_too_deep_json_is_422(
    client: httpx.AsyncClient, tenant: TenantHandle, settings: Any
) -> None:
    deep: dict[str, Any] = {}
    for _ in range(settings.max_json_depth + 1):
        deep = {"d": deep}
    body = {"action": "create", "resource_type": "c", "resource_id": "1", "after": deep}
    response = await client.post(AUDITS, json=body, headers=tenant.headers)
    assert response.status_code == 422
    assert (
        first_error(response) == f"after: JSON nested deeper than {settings.max_json_depth} levels"
    )
