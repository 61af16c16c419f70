"""GET /api/v1/logs/timeline: actions and audit events of one correlation id, in time order."""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.conftest import TenantHandle

TIMELINE = "/api/v1/logs/timeline"
Headers = Callable[[list[str]], Awaitable[dict[str, str]]]


async def action(client: httpx.AsyncClient, tenant: TenantHandle, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/logs/actions", json={"action_type": "crm_update", **body}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def audit(client: httpx.AsyncClient, tenant: TenantHandle, **body: Any) -> dict[str, Any]:
    body = {"action": "update", "resource_type": "deal", "resource_id": "D-1",
            "before": {"stage": "lead"}, "after": {"stage": "won"}, **body}  # fmt: skip
    response = await client.post("/api/v1/logs/audits", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


class TestTimeline:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        response = await client.get(TIMELINE, params={"correlation_id": "x"})
        assert response.status_code == 401

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        headers = await scoped_headers(["write"])
        response = await client.get(TIMELINE, params={"correlation_id": "x"}, headers=headers)
        assert response.status_code == 403

    async def test_actions_and_audits_in_time_order_with_their_kind(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        changed = await audit(client, tenant, user_id="user-x", correlation_id="inc-1")
        failed = await action(client, tenant, provider_name="hubspot", status="failed",
                              execution_time_ms=245, correlation_id="inc-1")  # fmt: skip
        retried = await action(client, tenant, provider_name="hubspot", correlation_id="inc-1")
        await action(client, tenant, correlation_id="inc-2")
        await audit(client, tenant, correlation_id="inc-2")
        await audit(client, tenant, resource_id="D-2")
        response = await client.get(
            TIMELINE, params={"correlation_id": "inc-1"}, headers=tenant.headers
        )
        assert response.status_code == 200
        entries = response.json()
        assert [(e["kind"], e["id"]) for e in entries] == [
            ("audit", changed["id"]), ("action", failed["id"]), ("action", retried["id"]),
        ]  # fmt: skip
        assert entries[0]["user_id"] == "user-x" and entries[0]["changes"]["diff"]
        assert entries[1]["status"] == "failure" and entries[1]["execution_time_ms"] == 245
        assert "x-timeline-truncated" not in response.headers

    async def test_limit_keeps_the_oldest_and_says_so(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        first = await action(client, tenant, correlation_id="inc-many")
        second = await audit(client, tenant, correlation_id="inc-many")
        await action(client, tenant, correlation_id="inc-many")
        response = await client.get(
            TIMELINE, params={"correlation_id": "inc-many", "limit": 2}, headers=tenant.headers
        )
        assert [e["id"] for e in response.json()] == [first["id"], second["id"]]
        assert response.headers["x-timeline-truncated"] == "true"

    async def test_another_tenants_entries_are_not_shown(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await action(client, other_tenant, correlation_id="shared")
        await audit(client, other_tenant, correlation_id="shared")
        mine = await action(client, tenant, correlation_id="shared")
        response = await client.get(
            TIMELINE, params={"correlation_id": "shared"}, headers=tenant.headers
        )
        assert [e["id"] for e in response.json()] == [mine["id"]]

    async def test_unknown_id_is_an_empty_list_and_bad_input_422(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        response = await client.get(
            TIMELINE, params={"correlation_id": "nothing"}, headers=tenant.headers
        )
        assert response.status_code == 200 and response.json() == []
        for params in ({}, {"correlation_id": ""}, {"correlation_id": "x", "limit": 0},
                       {"correlation_id": "x", "limit": 1001}):  # fmt: skip
            response = await client.get(TIMELINE, params=params, headers=tenant.headers)
            assert response.status_code == 422, params
            assert response.json()["detail"][0]["loc"][0] == "query"
