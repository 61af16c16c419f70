"""The destinations API: admin scope, validation naming the field, secrets sealed at rest and
masked on read, changes in the audit trail, the test route, and tenant isolation (404)."""

from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import select

from app.destinations.models import Destination
from tests.conftest import TenantHandle, create_key, first_error
from tests.destinations.conftest import HttpReceiver, create_destination

API = "/api/v1/destinations"
SPLUNK = {"url": "http://127.0.0.1:9/", "token": "hec-token-123456", "index": "main"}


class TestAccess:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(API)).status_code == 401

    async def test_missing_scope(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        key = await create_key(client, tenant, ["read", "write"])
        assert (await client.get(API, headers={"X-API-Key": key})).status_code == 403


async def test_create_read_update_delete(
    client: httpx.AsyncClient, tenant: TenantHandle, engine: Any
) -> None:
    created = await create_destination(
        client, tenant, type="splunk_hec", config=SPLUNK, kinds=["audit"], user_id="u1"
    )
    assert created["state"] == "active"
    assert created["config"]["token"] == "********"
    assert created["filters"] == {"user_id": "u1"}
    assert created["kinds"] == ["audit"]
    assert created["delivered_through"] >= 0 and created["last_error"] is None
    path = f"{API}/{created['id']}"
    async with engine.connect() as connection:
        query = select(Destination).where(Destination.id == UUID(created["id"]))
        row = (await connection.execute(query)).one()
    assert "token" not in row.config and "hec-token-123456" not in (row.secrets or "")
    # a masked secret sent back keeps the stored one; other fields change
    changed = await client.patch(
        path,
        json={"config": {**SPLUNK, "token": "********", "index": "audit"}, "state": "paused"},
        headers=tenant.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["config"]["index"] == "audit"
    assert changed.json()["state"] == "paused"
    listed = (await client.get(API, headers=tenant.headers)).json()
    assert [d["id"] for d in listed] == [created["id"]]
    trail = await client.get(
        f"/api/v1/logs/audits/resource/destination/{created['id']}", headers=tenant.headers
    )
    assert [e["action"] for e in trail.json()] == ["update", "create"] or [
        e["action"] for e in trail.json()
    ] == ["create", "update"]
    assert "hec-token-123456" not in trail.text
    assert (await client.delete(path, headers=tenant.headers)).status_code == 204
    assert (await client.get(path, headers=tenant.headers)).status_code == 404


async def test_bad_configs_name_the_field(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    for body, expected in (
        ({"type": "splunk_hec", "config": {"url": "http://127.0.0.1:9"}}, "config.token"),
        ({"type": "syslog", "config": {"host": "h", "port": 0}}, "config.port"),
        ({"type": "s3", "config": {"bucket": "bkt"}}, "config.region"),
        ({"type": "http", "config": {"url": "ftp://x"}}, "config.url"),
        ({"type": "http", "config": {"url": "http://a", "x": 1}}, "config.x"),
        ({"type": "kafka", "config": {}}, "type"),
    ):
        response = await client.post(API, json={"name": "n", **body}, headers=tenant.headers)
        assert response.status_code == 422, response.text
        assert first_error(response).startswith(expected), first_error(response)


async def test_private_addresses_are_refused_unless_allowed(
    client: httpx.AsyncClient, tenant: TenantHandle, app: Any
) -> None:
    app.state.settings.webhook_allow_private = False
    try:
        response = await client.post(
            API,
            json={"name": "n", "type": "syslog", "config": {"host": "127.0.0.1", "port": 514}},
            headers=tenant.headers,
        )
    finally:
        app.state.settings.webhook_allow_private = True
    assert response.status_code == 422
    assert "WEBHOOK_ALLOW_PRIVATE" in first_error(response)


async def test_another_tenants_destination_is_404(
    client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    created = await create_destination(client, tenant, type="splunk_hec", config=SPLUNK)
    path = f"{API}/{created['id']}"
    theirs = other_tenant.headers
    assert (await client.get(path, headers=theirs)).status_code == 404
    assert (await client.patch(path, json={"name": "x"}, headers=theirs)).status_code == 404
    assert (await client.post(f"{path}/test", headers=theirs)).status_code == 404
    assert (await client.delete(path, headers=theirs)).status_code == 404
    assert (await client.get(API, headers=theirs)).json() == []
    assert (await client.get(path, headers=tenant.headers)).status_code == 200


async def test_the_test_route_answers_with_the_receivers_response(
    client: httpx.AsyncClient, tenant: TenantHandle, http_receiver: HttpReceiver
) -> None:
    created = await create_destination(
        client, tenant, type="http", config={"url": http_receiver.url + "/hook"}, state="paused"
    )
    assert created["secret"].startswith("whsec_")
    assert created["config"]["secret"] == "********"
    response = await client.post(f"{API}/{created['id']}/test", headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True and response.json()["status_code"] == 200
    [record] = http_receiver.webhook_records()
    assert record["kind"] == "test" and record["stream_id"] == 0
    http_receiver.status = 401
    refused = (await client.post(f"{API}/{created['id']}/test", headers=tenant.headers)).json()
    assert refused["ok"] is False and refused["status_code"] == 401
