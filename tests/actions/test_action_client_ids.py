"""Client-generated ids: a retried write is stored once, whichever path serves it.

The same id with the same body is a replay (201, `Idempotent-Replayed: true`, nothing new
stored); with another body (or an id the server generated), a 409 naming the item. Ids are
unique per tenant: another tenant's action with the same id is another action. Every case
runs through the ingest lane (plain POSTs) and, where it matters, through the route's session
path (with an `Idempotency-Key`).
"""

import asyncio
from typing import Any
from uuid import UUID

import httpx
import pytest

from app.core.db import new_id
from tests.actions.conftest import ACTIONS, BATCH, list_all
from tests.conftest import TenantHandle


def action(**extra: Any) -> dict[str, Any]:
    return {"id": str(new_id()), "action_type": "crm_create", "status": "in_progress", **extra}


async def post(
    client: httpx.AsyncClient, tenant: TenantHandle, body: Any, key: str | None = None
) -> httpx.Response:
    headers = {**tenant.headers, **({"Idempotency-Key": key} if key else {})}
    path = BATCH if isinstance(body, list) else ACTIONS
    return await client.post(path, json=body, headers=headers)


class TestSingle:
    async def test_the_client_id_is_the_record_id(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = action()
        response = await post(client, tenant, body)
        assert response.status_code == 201, response.text
        assert response.json()["id"] == body["id"]
        assert "Idempotent-Replayed" not in response.headers
        got = await client.get(f"{ACTIONS}/{body['id']}", headers=tenant.headers)
        assert got.status_code == 200
        assert "request_hash" not in got.json()

    @pytest.mark.parametrize("key", [None, "k"])
    async def test_a_retry_is_a_replay_stored_once(
        self, client: httpx.AsyncClient, tenant: TenantHandle, key: str | None
    ) -> None:
        body = action(request_payload={"email": "a@example.com"})
        first = await post(client, tenant, body, key and f"{key}-{body['id']}")
        again = await post(client, tenant, {**body, "status": "IN_PROGRESS"})
        assert first.status_code == again.status_code == 201, again.text
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert [r["id"] for r in await list_all(client, tenant)] == [body["id"]]

    async def test_a_replay_answers_the_record_as_it_is_now(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = action()
        await post(client, tenant, body)
        done = await client.patch(
            f"{ACTIONS}/{body['id']}", json={"status": "completed"}, headers=tenant.headers
        )
        assert done.status_code == 200
        again = await post(client, tenant, body)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["status"] == "success"

    async def test_the_same_id_with_another_body_is_409(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = action()
        await post(client, tenant, body)
        for key in (None, "other-body"):
            response = await post(client, tenant, {**body, "action_type": "other"}, key)
            assert response.status_code == 409, response.text
            (item,) = response.json()["detail"]
            assert item["loc"] == ["body", "id"]
            assert "different body" in item["msg"]
        assert len(await list_all(client, tenant)) == 1

    async def test_ids_are_per_tenant_and_never_cross(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        # Actions are keyed by (tenant_id, id) (Citus-ready keys): the same id in another
        # tenant is another action. Neither tenant sees, replays or conflicts with the other's.
        body = action(request_payload={"secret_plan": "x"})
        first = await post(client, tenant, body)
        theirs = {**body, "action_type": "their_own", "request_payload": {"plan": "y"}}
        response = await post(client, other_tenant, theirs)
        assert response.status_code == 201, response.text
        assert "idempotent-replayed" not in response.headers
        assert "secret_plan" not in response.text
        mine = await client.get(f"{ACTIONS}/{body['id']}", headers=tenant.headers)
        other = await client.get(f"{ACTIONS}/{body['id']}", headers=other_tenant.headers)
        assert mine.json() == first.json()
        assert other.json()["action_type"] == "their_own"
        assert other.json()["tenant_id"] == other_tenant.id
        assert [r["id"] for r in await list_all(client, other_tenant)] == [body["id"]]
        assert [r["id"] for r in await list_all(client, tenant)] == [body["id"]]

    async def test_a_server_generated_id_given_again_is_409(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        stored = (await post(client, tenant, {"action_type": "no_id"})).json()
        response = await post(client, tenant, action(id=stored["id"]))
        assert response.status_code == 409, response.text
        assert response.json()["detail"][0]["msg"] == f"action id {stored['id']} is already in use"

    async def test_concurrent_duplicates_store_one_row(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = action()
        responses = await asyncio.gather(*(post(client, tenant, body) for _ in range(20)))
        assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
        assert sum("Idempotent-Replayed" not in r.headers for r in responses) >= 1
        assert [r["id"] for r in await list_all(client, tenant)] == [body["id"]]

    async def test_an_id_must_be_a_uuid(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        response = await post(client, tenant, {**action(), "id": "not-a-uuid"})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "id"]


class TestBatch:
    async def test_a_retried_batch_is_replayed_and_stored_once(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        items = [action(user_id=f"u{i}") for i in range(5)]
        first = await post(client, tenant, items)
        again = await post(client, tenant, items)
        assert first.status_code == again.status_code == 201, again.text
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json() == {"created": 5, "ids": [i["id"] for i in items]}
        assert len(await list_all(client, tenant)) == 5

    async def test_a_batch_mixing_stored_and_new_items_stores_the_new_ones(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        stored = [action(user_id="old") for _ in range(2)]
        await post(client, tenant, stored)
        mixed = [*stored, action(user_id="new")]
        response = await post(client, tenant, mixed)
        assert response.status_code == 201, response.text
        assert "Idempotent-Replayed" not in response.headers
        assert response.json()["ids"] == [i["id"] for i in mixed]
        rows = await list_all(client, tenant)
        assert sorted(r["user_id"] for r in rows) == ["new", "old", "old"]

    async def test_one_conflicting_item_refuses_the_batch(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        stored = action()
        await post(client, tenant, stored)
        items = [action(), {**stored, "action_type": "changed"}, action()]
        response = await post(client, tenant, items)
        assert response.status_code == 409, response.text
        assert [e["loc"] for e in response.json()["detail"]] == [["body", 1, "id"]]
        assert [r["id"] for r in await list_all(client, tenant)] == [stored["id"]]

    async def test_an_id_twice_in_one_batch_is_422(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        twice = action()
        response = await post(client, tenant, [action(), twice, dict(twice)])
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", 2, "id"]
        assert await list_all(client, tenant) == []

    async def test_ids_mix_with_server_generated_ones(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        given = action()
        response = await post(client, tenant, [given, {"action_type": "no_id"}])
        assert response.status_code == 201, response.text
        ids = response.json()["ids"]
        assert ids[0] == given["id"] and UUID(ids[1]).version == 7
