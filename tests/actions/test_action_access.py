"""Who may call each action route: 401 without a key, 403 without the scope, and tenant isolation.

For every route, a key of one tenant never sees, changes or counts another tenant's rows.
"""

from typing import Any

import httpx
import pytest

from tests.actions.conftest import ACTIONS, BATCH, STATS, Headers, Record, list_all
from tests.conftest import TenantHandle


async def assert_anonymous(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> None:
    response = await client.request(method, url, **kw)
    assert response.status_code == 401, response.text
    assert "API key" in response.json()["detail"]


async def assert_missing_scope(
    client: httpx.AsyncClient, headers: dict[str, str], method: str, url: str, **kw: Any
) -> None:
    response = await client.request(method, url, headers=headers, **kw)
    assert response.status_code == 403, response.text
    assert "scope" in response.json()["detail"]


@pytest.fixture
async def theirs(record: Record, other_tenant: TenantHandle) -> dict[str, Any]:
    """A running and a failed action of the other tenant."""
    running = await record(other_tenant, status="in_progress", user_id="eve", action_name="X")
    await record(
        other_tenant,
        status="failure",
        user_id="eve",
        error_type="Boom",
        error_message="boom 1",
        execution_time_ms=5,
    )
    return running


@pytest.fixture
async def mine(record: Record, tenant: TenantHandle) -> dict[str, Any]:
    return await record(
        tenant,
        status="failure",
        user_id="ann",
        error_type="Oops",
        error_message="oops 2",
        execution_time_ms=7,
    )


class TestRecordAction:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        await assert_anonymous(client, "POST", ACTIONS, json={"action_type": "x"})

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        headers = await scoped_headers(["read"])
        await assert_missing_scope(client, headers, "POST", ACTIONS, json={"action_type": "x"})

    async def test_row_belongs_to_the_key_tenant(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        response = await client.post(ACTIONS, json={"action_type": "x"}, headers=tenant.headers)
        assert response.json()["tenant_id"] == tenant.id
        assert await list_all(client, other_tenant) == []


class TestRecordBatch:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        await assert_anonymous(client, "POST", BATCH, json=[{"action_type": "x"}])

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        headers = await scoped_headers(["read", "admin"])
        await assert_missing_scope(client, headers, "POST", BATCH, json=[{"action_type": "x"}])

    async def test_rows_belong_to_the_key_tenant(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        response = await client.post(BATCH, json=[{"action_type": "x"}], headers=tenant.headers)
        assert [row["id"] for row in await list_all(client, tenant)] == response.json()["ids"]
        assert await list_all(client, other_tenant) == []


class TestUpdateAction:
    async def test_anonymous(self, client: httpx.AsyncClient, theirs: dict[str, Any]) -> None:
        url = f"{ACTIONS}/{theirs['id']}"
        await assert_anonymous(client, "PATCH", url, json={"status": "success"})

    async def test_missing_scope(
        self,
        client: httpx.AsyncClient,
        scoped_headers: Headers,
        record: Record,
        tenant: TenantHandle,
    ) -> None:
        action = await record(tenant, status="pending")
        headers = await scoped_headers(["read"])
        url = f"{ACTIONS}/{action['id']}"
        await assert_missing_scope(client, headers, "PATCH", url, json={"status": "success"})

    async def test_other_tenant_is_not_found_and_unchanged(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        other_tenant: TenantHandle,
        theirs: dict[str, Any],
    ) -> None:
        url = f"{ACTIONS}/{theirs['id']}"
        response = await client.patch(url, json={"status": "failure"}, headers=tenant.headers)
        assert response.status_code == 404
        assert theirs["id"] in response.json()["detail"]
        unchanged = await client.get(url, headers=other_tenant.headers)
        assert unchanged.json()["status"] == "in_progress"


class TestAddStep:
    async def test_anonymous(self, client: httpx.AsyncClient, theirs: dict[str, Any]) -> None:
        url = f"{ACTIONS}/{theirs['id']}/steps"
        await assert_anonymous(client, "POST", url, json={"step": "s", "status": "ok"})

    async def test_missing_scope(
        self,
        client: httpx.AsyncClient,
        scoped_headers: Headers,
        record: Record,
        tenant: TenantHandle,
    ) -> None:
        action = await record(tenant, status="pending")
        headers = await scoped_headers(["read"])
        url = f"{ACTIONS}/{action['id']}/steps"
        await assert_missing_scope(client, headers, "POST", url, json={"step": "s", "status": "ok"})

    async def test_other_tenant_is_not_found_and_unchanged(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        other_tenant: TenantHandle,
        theirs: dict[str, Any],
    ) -> None:
        url = f"{ACTIONS}/{theirs['id']}"
        step = {"step": "s", "status": "ok"}
        response = await client.post(f"{url}/steps", json=step, headers=tenant.headers)
        assert response.status_code == 404
        assert (await client.get(url, headers=other_tenant.headers)).json()["steps"] == []


class TestListActions:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        await assert_anonymous(client, "GET", ACTIONS)

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        await assert_missing_scope(client, await scoped_headers(["write"]), "GET", ACTIONS)

    async def test_other_tenant_rows_are_absent(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        mine: dict[str, Any],
        theirs: dict[str, Any],
    ) -> None:
        assert [row["id"] for row in await list_all(client, tenant)] == [mine["id"]]
        by_user = await list_all(client, tenant, user_id="eve")
        assert by_user == []


class TestGetAction:
    async def test_anonymous(self, client: httpx.AsyncClient, theirs: dict[str, Any]) -> None:
        await assert_anonymous(client, "GET", f"{ACTIONS}/{theirs['id']}")

    async def test_missing_scope(
        self, client: httpx.AsyncClient, scoped_headers: Headers, mine: dict[str, Any]
    ) -> None:
        headers = await scoped_headers(["write"])
        await assert_missing_scope(client, headers, "GET", f"{ACTIONS}/{mine['id']}")

    async def test_other_tenant_is_not_found(
        self, client: httpx.AsyncClient, tenant: TenantHandle, theirs: dict[str, Any]
    ) -> None:
        response = await client.get(f"{ACTIONS}/{theirs['id']}", headers=tenant.headers)
        assert response.status_code == 404
        assert response.json() == {"detail": f"action {theirs['id']} not found"}


class TestRecentFailures:
    url = f"{ACTIONS}/failed/recent"

    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        await assert_anonymous(client, "GET", self.url)

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        await assert_missing_scope(client, await scoped_headers(["write"]), "GET", self.url)

    async def test_other_tenant_rows_are_absent(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        mine: dict[str, Any],
        theirs: dict[str, Any],
    ) -> None:
        response = await client.get(self.url, headers=tenant.headers)
        assert [row["id"] for row in response.json()] == [mine["id"]]


class TestExport:
    url = f"{ACTIONS}/export"

    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        await assert_anonymous(client, "GET", self.url)

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        await assert_missing_scope(client, await scoped_headers(["write"]), "GET", self.url)

    async def test_other_tenant_rows_are_absent(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        mine: dict[str, Any],
        theirs: dict[str, Any],
    ) -> None:
        params = {"format": "ndjson"}
        response = await client.get(self.url, params=params, headers=tenant.headers)
        lines = response.text.splitlines()
        assert len(lines) == 1
        assert mine["id"] in lines[0]


class TestStats:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        await assert_anonymous(client, "GET", STATS)

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        await assert_missing_scope(client, await scoped_headers(["write"]), "GET", STATS)

    async def test_other_tenant_rows_are_not_counted(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        mine: dict[str, Any],
        theirs: dict[str, Any],
    ) -> None:
        stats = (await client.get(STATS, headers=tenant.headers)).json()
        assert stats["total_actions"] == 1
        assert stats["failed_actions"] == 1
        assert stats["p99_execution_time_ms"] == 7


class TestTimeseries:
    url = f"{STATS}/timeseries"

    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        await assert_anonymous(client, "GET", self.url)

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        await assert_missing_scope(client, await scoped_headers(["write"]), "GET", self.url)

    async def test_other_tenant_rows_are_not_counted(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        mine: dict[str, Any],
        theirs: dict[str, Any],
    ) -> None:
        series = (await client.get(self.url, headers=tenant.headers)).json()
        assert sum(bucket["total"] for bucket in series["buckets"]) == 1


class TestUserActivity:
    url = f"{STATS}/users"

    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        await assert_anonymous(client, "GET", self.url)

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        await assert_missing_scope(client, await scoped_headers(["write"]), "GET", self.url)

    async def test_other_tenant_rows_are_not_counted(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        mine: dict[str, Any],
        theirs: dict[str, Any],
    ) -> None:
        users = (await client.get(self.url, headers=tenant.headers)).json()
        assert [(u["user_id"], u["total_actions"]) for u in users] == [("ann", 1)]


class TestFailurePatterns:
    url = f"{STATS}/failures"

    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        await assert_anonymous(client, "GET", self.url)

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        await assert_missing_scope(client, await scoped_headers(["write"]), "GET", self.url)

    async def test_other_tenant_rows_are_not_counted(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        mine: dict[str, Any],
        theirs: dict[str, Any],
    ) -> None:
        patterns = (await client.get(self.url, headers=tenant.headers)).json()
        assert [(p["error_type"], p["count"], p["example_id"]) for p in patterns] == [
            ("Oops", 1, mine["id"])
        ]
