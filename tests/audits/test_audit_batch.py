"""POST /api/v1/logs/audits/batch: up to 1000 events in order, all or nothing, idempotent."""

from collections.abc import Awaitable, Callable
from itertools import pairwise
from typing import Any

import httpx

from tests.audits.conftest import AUDITS, FetchAll
from tests.conftest import TenantHandle, create_tenant

BATCH = f"{AUDITS}/batch"
Headers = Callable[[list[str]], Awaitable[dict[str, str]]]


def event(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "action": "create",
        "resource_type": "invoice",
        "resource_id": f"inv-{n}",
        "after": {"n": n, "password": "hunter2"},
        **extra,
    }


async def ours(fetch_all: FetchAll, tenant: TenantHandle) -> list[dict[str, Any]]:
    """The tenant's invoice rows, in chain order."""
    rows = await fetch_all(AUDITS, tenant.headers, resource_type="invoice", limit=1000)
    return sorted(rows, key=lambda row: row["sequence"])


class TestAuditBatch:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        response = await client.post(BATCH, json={"events": [event(1)]})
        assert response.status_code == 401

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        headers = await scoped_headers(["read"])
        response = await client.post(BATCH, json={"events": [event(1)]}, headers=headers)
        assert response.status_code == 403
        assert "write" in response.json()["detail"]

    async def test_1000_recorded_in_order(
        self, client: httpx.AsyncClient, tenant: TenantHandle, fetch_all: FetchAll
    ) -> None:
        body = {"events": [event(n) for n in range(1000)]}
        response = await client.post(BATCH, json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
        answer = response.json()
        assert (answer["created"], answer["skipped"]) == (1000, [])
        events = answer["events"]
        assert [e["resource_id"] for e in events] == [f"inv-{n}" for n in range(1000)]
        first = events[0]["sequence"]
        assert [e["sequence"] for e in events] == list(range(first, first + 1000))
        assert all(later["prev_hash"] == e["hash"] for e, later in pairwise(events))
        assert events[0]["changes"]["after"]["password"] != "hunter2"  # redacted
        assert await ours(fetch_all, tenant) == events  # the answer is what is stored
        verified = (await client.get(f"{AUDITS}/verify", headers=tenant.headers)).json()
        assert verified["valid"] is True

    async def test_1001_refused(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        body = {"events": [event(n) for n in range(1001)]}
        response = await client.post(BATCH, json=body, headers=tenant.headers)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "events"]

    async def test_empty_refused(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        response = await client.post(BATCH, json={"events": []}, headers=tenant.headers)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "events"]

    async def test_one_bad_item_stores_nothing(
        self, client: httpx.AsyncClient, tenant: TenantHandle, fetch_all: FetchAll
    ) -> None:
        """A schema error and a value only the service's rules refuse (a NUL character): each
        is a 422 naming the item's index, and no event of the batch is stored."""
        bad_shape = [event(0), event(1), {**event(2), "before": [1, 2]}]
        response = await client.post(BATCH, json={"events": bad_shape}, headers=tenant.headers)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][:4] == ["body", "events", 2, "before"]
        bad_text = [event(0), event(1), event(2), {**event(3), "metadata": {"note": "a\x00b"}}]
        response = await client.post(BATCH, json={"events": bad_text}, headers=tenant.headers)
        assert response.status_code == 422, response.text
        loc = response.json()["detail"][0]["loc"]
        assert loc == ["body", "events", 3, "metadata", "note"]
        assert await ours(fetch_all, tenant) == []

    async def test_update_without_change_is_skipped(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        same = {**event(1), "action": "update", "before": {"a": 1}, "after": {"a": 1}}
        body = {"events": [event(0), same, event(2)]}
        response = await client.post(BATCH, json=body, headers=tenant.headers)
        assert response.status_code == 201
        answer = response.json()
        assert (answer["created"], answer["skipped"]) == (2, [1])
        assert [e["resource_id"] for e in answer["events"]] == ["inv-0", "inv-2"]
        response = await client.post(BATCH, json={"events": [same]}, headers=tenant.headers)
        assert response.status_code == 200
        assert response.json() == {"created": 0, "skipped": [0], "events": []}

    async def test_idempotency_key_replays_and_conflicts(
        self, client: httpx.AsyncClient, tenant: TenantHandle, fetch_all: FetchAll
    ) -> None:
        headers = {**tenant.headers, "Idempotency-Key": "audit-batch-1"}
        body = {"events": [event(n) for n in range(3)]}
        first = await client.post(BATCH, json=body, headers=headers)
        assert first.status_code == 201
        assert "idempotent-replayed" not in first.headers
        again = await client.post(BATCH, json=body, headers=headers)
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        other = await client.post(BATCH, json={"events": [event(9)]}, headers=headers)
        assert other.status_code == 409
        assert "different request body" in other.json()["detail"]
        assert len(await ours(fetch_all, tenant)) == 3
        # the single POST keeps its keys too; a batch's key is not a single POST's
        single = {**tenant.headers, "Idempotency-Key": "audit-one-1"}
        one = await client.post(AUDITS, json=event(5), headers=single)
        assert one.status_code == 201
        replay = await client.post(AUDITS, json=event(5), headers=single)
        assert (replay.status_code, replay.json()) == (201, one.json())
        assert replay.headers["idempotent-replayed"] == "true"
        assert (await client.post(AUDITS, json=event(5), headers=headers)).status_code == 409
        assert len(await ours(fetch_all, tenant)) == 4

    async def test_another_tenant_cannot_see_the_rows(
        self, client: httpx.AsyncClient, tenant: TenantHandle, fetch_all: FetchAll
    ) -> None:
        response = await client.post(BATCH, json={"events": [event(1)]}, headers=tenant.headers)
        (row,) = response.json()["events"]
        other = await create_tenant(client, "Tenant B")
        assert (await client.get(f"{AUDITS}/{row['id']}", headers=other.headers)).status_code == 404
        assert await ours(fetch_all, other) == []
        # the same Idempotency-Key is another tenant's own
        key = {"Idempotency-Key": "shared-key"}
        body = {"events": [event(2)]}
        mine = await client.post(BATCH, json=body, headers={**tenant.headers, **key})
        theirs = await client.post(BATCH, json=body, headers={**other.headers, **key})
        assert mine.status_code == theirs.status_code == 201
        assert "idempotent-replayed" not in theirs.headers
        assert theirs.json()["events"][0]["tenant_id"] == other.id
