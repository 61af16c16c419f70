"""Idempotency-Key: retries replay the first response, store nothing, and survive races."""

import asyncio
from datetime import timedelta
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import utcnow
from app.core.idempotency import IdempotencyKey
from tests.actions.conftest import ACTIONS, BATCH, detail_text, list_all
from tests.conftest import TenantHandle

BODY = {"action_type": "crm_create", "status": "completed", "request_payload": {"a": 1, "b": 2}}


def keyed(tenant: TenantHandle, key: str) -> dict[str, str]:
    return {**tenant.headers, "Idempotency-Key": key}


async def test_retry_replays_the_first_response(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    first = await client.post(ACTIONS, json=BODY, headers=keyed(tenant, "k-1"))
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    reordered = {
        "request_payload": {"b": 2, "a": 1},
        "status": "success",
        "action_type": "crm_create",
    }
    retry = await client.post(ACTIONS, json=reordered, headers=keyed(tenant, "k-1"))
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert [row["id"] for row in await list_all(client, tenant)] == [first.json()["id"]]


async def test_batch_retry_replays_the_first_response(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    items = [BODY, {"action_type": "other"}]
    first = await client.post(BATCH, json=items, headers=keyed(tenant, "batch-1"))
    retry = await client.post(BATCH, json=items, headers=keyed(tenant, "batch-1"))
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert len(await list_all(client, tenant)) == 2


async def test_same_key_with_another_body_is_409(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    await client.post(ACTIONS, json=BODY, headers=keyed(tenant, "k-2"))
    changed = await client.post(
        ACTIONS, json={**BODY, "status": "failed"}, headers=keyed(tenant, "k-2")
    )
    assert changed.status_code == 409
    assert "Idempotency-Key 'k-2'" in detail_text(changed)
    as_batch = await client.post(BATCH, json=[BODY], headers=keyed(tenant, "k-2"))
    assert as_batch.status_code == 409
    assert len(await list_all(client, tenant)) == 1


async def test_keys_belong_to_a_tenant(
    client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    mine = await client.post(ACTIONS, json=BODY, headers=keyed(tenant, "shared"))
    theirs = await client.post(ACTIONS, json=BODY, headers=keyed(other_tenant, "shared"))
    assert mine.status_code == theirs.status_code == 201
    assert theirs.headers.get("idempotent-replayed") is None
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["tenant_id"] == other_tenant.id


@pytest.mark.parametrize("url", [ACTIONS, BATCH])
async def test_concurrent_duplicates_store_one_row(
    client: httpx.AsyncClient, tenant: TenantHandle, url: str
) -> None:
    body = BODY if url == ACTIONS else [BODY]
    responses = await asyncio.gather(
        *(client.post(url, json=body, headers=keyed(tenant, "race")) for _ in range(8))
    )
    assert [r.status_code for r in responses] == [201] * 8
    assert all(r.json() == responses[0].json() for r in responses)
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 7
    assert len(await list_all(client, tenant)) == 1


async def test_keys_are_kept_for_the_ttl_then_reusable(
    client: httpx.AsyncClient, tenant: TenantHandle, engine: AsyncEngine
) -> None:
    first = await client.post(ACTIONS, json=BODY, headers=keyed(tenant, "k-ttl"))
    where = (IdempotencyKey.tenant_id == UUID(tenant.id), IdempotencyKey.key == "k-ttl")
    async with engine.begin() as connection:
        stored = (await connection.execute(select(IdempotencyKey).where(*where))).one()
        assert stored.expires_at - stored.created_at >= timedelta(hours=24)
        assert stored.status_code == 201
        await connection.execute(
            update(IdempotencyKey).where(*where).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    reused = await client.post(ACTIONS, json={"action_type": "new"}, headers=keyed(tenant, "k-ttl"))
    assert reused.status_code == 201
    assert reused.headers.get("idempotent-replayed") is None
    assert reused.json()["id"] != first.json()["id"]
    assert len(await list_all(client, tenant)) == 2


async def test_key_longer_than_255_is_refused(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    response = await client.post(ACTIONS, json=BODY, headers=keyed(tenant, "k" * 256))
    assert response.status_code == 422
    assert "idempotency-key" in detail_text(response)
