"""Action schemas: versions, an invalid schema refused, and every recording path checked
(single, batch, with an Idempotency-Key, PATCH), in enforce and warn mode, per tenant."""

from typing import Any

import httpx
import pytest

from tests.conftest import TenantHandle

SCHEMAS = "/api/v1/schemas"
ACTIONS = "/api/v1/logs/actions"

CONTACT = {
    "type": "object",
    "required": ["contact"],
    "properties": {
        "contact": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "integer", "minimum": 1}},
        }
    },
}
RESULT = {"type": "object", "required": ["deal_id"], "properties": {"deal_id": {"type": "string"}}}


async def put(
    client: httpx.AsyncClient, tenant: TenantHandle, action_type: str, **body: Any
) -> dict[str, Any]:
    response = await client.put(f"{SCHEMAS}/{action_type}", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def post(
    client: httpx.AsyncClient, tenant: TenantHandle, body: Any, path: str = ACTIONS, **headers: str
) -> httpx.Response:
    return await client.post(path, json=body, headers={**tenant.headers, **headers})


def locs(response: httpx.Response) -> list[tuple[list[Any], str]]:
    return [(item["loc"], item["msg"]) for item in response.json()["detail"]]


class TestPutSchema:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        response = await client.put(f"{SCHEMAS}/crm_create", json={"mode": "warn"})
        assert response.status_code == 401

    async def test_missing_scope(
        self, client: httpx.AsyncClient, scoped_headers: Any, tenant: TenantHandle
    ) -> None:
        headers = await scoped_headers(["read", "write"])
        response = await client.put(f"{SCHEMAS}/crm_create", json={"mode": "warn"}, headers=headers)
        assert response.status_code == 403

    async def test_every_change_is_a_new_version_kept(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        first = await put(client, tenant, "crm_create", mode="warn", request_payload=CONTACT)
        second = await put(client, tenant, "crm_create", mode="enforce", response_data=RESULT)
        assert (first["version"], second["version"]) == (1, 2)
        old = await client.get(f"{SCHEMAS}/crm_create/versions/1", headers=tenant.headers)
        assert old.status_code == 200
        assert old.json()["mode"] == "warn" and old.json()["request_payload"] == CONTACT
        current = await client.get(f"{SCHEMAS}/crm_create", headers=tenant.headers)
        assert current.json()["version"] == 2 and current.json()["response_data"] == RESULT
        listed = await client.get(SCHEMAS, headers=tenant.headers)
        assert [(s["action_type"], s["version"]) for s in listed.json()] == [("crm_create", 2)]
        missing = await client.get(f"{SCHEMAS}/crm_create/versions/3", headers=tenant.headers)
        assert missing.status_code == 404

    @pytest.mark.parametrize(
        ("schema", "why"),
        [
            ({"type": "objekt"}, "type"),
            ({"properties": {"id": {"minimum": "one"}}}, "minimum"),
            ({"pattern": "(unclosed"}, "pattern"),
            ({"$ref": "https://schemas.example.com/contact.json"}, "retriev"),
            ({"properties": {"a\u0000": {}}}, "nul"),
        ],
    )
    async def test_an_invalid_schema_is_refused_saying_why(
        self, client: httpx.AsyncClient, tenant: TenantHandle, schema: Any, why: str
    ) -> None:
        response = await client.put(
            f"{SCHEMAS}/crm_create",
            json={"mode": "enforce", "request_payload": schema},
            headers=tenant.headers,
        )
        assert response.status_code == 422, response.text
        ((loc, message),) = locs(response)
        assert loc == ["body", "request_payload"]
        assert message.startswith("not a valid JSON Schema") and why in message.lower(), message

    async def test_a_bad_mode_is_refused(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        response = await client.put(
            f"{SCHEMAS}/crm_create", json={"mode": "strict"}, headers=tenant.headers
        )
        assert response.status_code == 422
        assert locs(response)[0][0] == ["body", "mode"]


class TestEnforce:
    async def test_single_refused_naming_the_field_and_rule(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        await put(client, tenant, "crm_create", mode="enforce", request_payload=CONTACT)
        bad = {"action_type": "crm_create", "request_payload": {"contact": {"id": 0}}}
        response = await post(client, tenant, bad)
        assert response.status_code == 422, response.text
        ((loc, message),) = locs(response)
        assert loc == ["body", "request_payload", "contact", "id"]
        assert "minimum" in message and "v1" in message
        good = {"action_type": "crm_create", "request_payload": {"contact": {"id": 7}}}
        stored = await post(client, tenant, good)
        assert stored.status_code == 201, stored.text
        assert stored.json()["schema_version"] == 1 and stored.json()["schema_errors"] is None
        other_type = await post(client, tenant, {"action_type": "s3_export"})
        assert other_type.status_code == 201 and other_type.json()["schema_version"] is None

    async def test_batch_names_the_item_and_stores_none(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        await put(client, tenant, "crm_create", mode="enforce", request_payload=CONTACT)
        items = [
            {"action_type": "crm_create", "request_payload": {"contact": {"id": 1}}},
            {"action_type": "s3_export"},
            {"action_type": "crm_create", "request_payload": {}},
        ]
        response = await post(client, tenant, items, f"{ACTIONS}/batch")
        assert response.status_code == 422, response.text
        ((loc, message),) = locs(response)
        assert loc == ["body", 2, "request_payload"] and "contact" in message
        listed = await client.get(ACTIONS, headers=tenant.headers)
        assert listed.json() == []

    async def test_with_an_idempotency_key(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        await put(client, tenant, "crm_create", mode="enforce", request_payload=CONTACT)
        bad = {"action_type": "crm_create", "request_payload": {"contact": {"id": "x"}}}
        response = await post(client, tenant, bad, **{"Idempotency-Key": "k-1"})
        assert response.status_code == 422
        assert locs(response)[0][0] == ["body", "request_payload", "contact", "id"]

    async def test_patch_checks_what_it_changes(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        await put(client, tenant, "crm_create", mode="enforce", response_data=RESULT)
        # A running action has no response yet: its schema applies once it is given.
        created = await post(client, tenant, {"action_type": "crm_create", "status": "pending"})
        assert created.status_code == 201, created.text
        url = f"{ACTIONS}/{created.json()['id']}"
        refused = await client.patch(
            url, json={"status": "success", "response_data": {"deal_id": 5}}, headers=tenant.headers
        )
        assert refused.status_code == 422, refused.text
        assert locs(refused)[0][0] == ["body", "response_data", "deal_id"]
        still = await client.get(url, headers=tenant.headers)
        assert still.json()["status"] == "pending"
        done = await client.patch(
            url, json={"status": "success", "response_data": {"deal_id": "d-5"}},
            headers=tenant.headers,
        )  # fmt: skip
        assert done.status_code == 200, done.text
        assert done.json()["schema_version"] == 1


class TestWarn:
    async def test_stored_with_findings_and_listed(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        await put(client, tenant, "crm_create", mode="warn", request_payload=CONTACT)
        bad = await post(client, tenant, {"action_type": "crm_create", "request_payload": {}})
        assert bad.status_code == 201, bad.text
        assert bad.json()["schema_version"] == 1
        ((finding),) = bad.json()["schema_errors"]
        assert finding["path"] == "request_payload" and "contact" in finding["message"]
        good = {"action_type": "crm_create", "request_payload": {"contact": {"id": 3}}}
        batch = await post(client, tenant, [good, {**good, "request_payload": {"contact": {}}}],
                           f"{ACTIONS}/batch")  # fmt: skip
        assert batch.status_code == 201, batch.text
        flagged = await client.get(
            ACTIONS, params={"schema_errors": "true"}, headers=tenant.headers
        )
        assert flagged.status_code == 200
        assert {row["id"] for row in flagged.json()} == {bad.json()["id"], batch.json()["ids"][1]}
        stored = await client.get(f"{ACTIONS}/{batch.json()['ids'][1]}", headers=tenant.headers)
        assert stored.json()["schema_errors"][0]["path"] == "request_payload.contact"

    async def test_patch_notes_findings(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        await put(client, tenant, "crm_create", mode="warn", response_data=RESULT)
        created = await post(client, tenant, {"action_type": "crm_create", "status": "pending"})
        assert created.json()["schema_errors"] is None
        url = f"{ACTIONS}/{created.json()['id']}"
        done = await client.patch(
            url, json={"status": "success", "response_data": {}}, headers=tenant.headers
        )
        assert done.status_code == 200, done.text
        assert done.json()["schema_errors"][0]["path"] == "response_data"
        assert "deal_id" in done.json()["schema_errors"][0]["message"]


class TestDelete:
    async def test_delete_stops_checking_and_keeps_versions(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        await put(client, tenant, "crm_create", mode="enforce", request_payload=CONTACT)
        response = await client.delete(f"{SCHEMAS}/crm_create", headers=tenant.headers)
        assert response.status_code == 204
        stored = await post(client, tenant, {"action_type": "crm_create"})
        assert stored.status_code == 201 and stored.json()["schema_version"] is None
        gone = await client.get(f"{SCHEMAS}/crm_create", headers=tenant.headers)
        assert gone.status_code == 404
        kept = await client.get(f"{SCHEMAS}/crm_create/versions/1", headers=tenant.headers)
        assert kept.status_code == 200
        again = await put(client, tenant, "crm_create", mode="warn")
        assert again["version"] == 2
        assert (
            await client.delete(f"{SCHEMAS}/nothing", headers=tenant.headers)
        ).status_code == 404


class TestTenantIsolation:
    async def test_a_schema_is_its_tenants_alone(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await put(client, tenant, "crm_create", mode="enforce", request_payload=CONTACT)
        theirs = await post(client, other_tenant, {"action_type": "crm_create"})
        assert theirs.status_code == 201 and theirs.json()["schema_version"] is None
        for path in ("crm_create", "crm_create/versions/1"):
            response = await client.get(f"{SCHEMAS}/{path}", headers=other_tenant.headers)
            assert response.status_code == 404
        assert (await client.get(SCHEMAS, headers=other_tenant.headers)).json() == []
        deleted = await client.delete(f"{SCHEMAS}/crm_create", headers=other_tenant.headers)
        assert deleted.status_code == 404
        ours = await post(client, tenant, {"action_type": "crm_create"})
        assert ours.status_code == 422
