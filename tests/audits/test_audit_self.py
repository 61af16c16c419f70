"""The service audits itself: tenant and key changes land in the tenant's own audit trail."""

import hashlib
import json
from typing import Any

import httpx

from app.core.redact import REDACTED
from app.main import create_app
from tests.audits.conftest import AUDITS, FetchAll
from tests.conftest import ADMIN, TenantHandle, create_tenant

AGENT = {"User-Agent": "ops-console/1.4"}


async def trail(
    fetch_all: FetchAll, tenant: TenantHandle, resource_type: str, resource_id: str
) -> list[dict[str, Any]]:
    return await fetch_all(f"{AUDITS}/resource/{resource_type}/{resource_id}", tenant.headers)


def assert_no_secret(rows: list[dict[str, Any]], plaintext: str) -> None:
    text = json.dumps(rows)
    assert plaintext not in text
    assert plaintext[17:] not in text  # the secret after `alk_<12 hex>_`
    assert hashlib.sha256(plaintext.encode()).hexdigest() not in text
    assert "key_hash" not in text


async def test_creating_a_tenant_is_its_first_rows(
    client: httpx.AsyncClient, fetch_all: FetchAll
) -> None:
    response = await client.post(
        "/api/v1/admin/tenants", json={"name": "Self Audit Co"}, headers={**ADMIN, **AGENT}
    )
    body = response.json()
    tenant = TenantHandle(body["id"], body["slug"], body["api_key"], body["api_key_id"])
    rows = list(reversed(await fetch_all(AUDITS, tenant.headers)))
    assert [(r["sequence"], r["action"], r["resource_type"]) for r in rows] == [
        (1, "create", "tenant"),
        (2, "create", "api_key"),
    ]
    created, key = rows
    assert created["resource_id"] == tenant.id
    assert created["changes"]["after"] == {
        "name": "Self Audit Co",
        "slug": tenant.slug,
        "retention_days": None,
        "audit_retention_days": None,
    }
    assert key["resource_id"] == tenant.key_id
    assert key["changes"]["after"]["prefix"] == tenant.key[:16]
    assert key["changes"]["after"]["scopes"] == ["admin", "read", "write"]
    for row in rows:
        assert (row["user_id"], row["ip_address"], row["user_agent"]) == (
            "admin",
            "127.0.0.1",
            "ops-console/1.4",
        )
    assert_no_secret(rows, tenant.key)


async def test_updating_a_tenant_records_before_and_after(
    client: httpx.AsyncClient, tenant: TenantHandle, fetch_all: FetchAll
) -> None:
    url = f"/api/v1/admin/tenants/{tenant.id}"
    patched = await client.patch(url, json={"retention_days": 30}, headers={**ADMIN, **AGENT})
    assert patched.status_code == 200
    unchanged = await client.patch(url, json={"retention_days": 30}, headers=ADMIN)
    assert unchanged.status_code == 200
    rows = await trail(fetch_all, tenant, "tenant", tenant.id)
    assert [r["action"] for r in rows] == ["create", "update"]
    update = rows[-1]
    assert update["changes"]["before"]["retention_days"] is None
    assert update["changes"]["after"]["retention_days"] == 30
    assert update["changes"]["diff"] == [
        {"path": "retention_days", "kind": "changed", "old": None, "new": 30}
    ]
    assert (update["user_id"], update["user_agent"]) == ("admin", "ops-console/1.4")


async def test_keys_issued_and_revoked_by_the_operator(
    client: httpx.AsyncClient, tenant: TenantHandle, fetch_all: FetchAll
) -> None:
    keys = f"/api/v1/admin/tenants/{tenant.id}/keys"
    body = {"name": "reporting", "scopes": ["read"], "expires_at": "2099-01-01T00:00:00Z"}
    issued = (await client.post(keys, json=body, headers={**ADMIN, **AGENT})).json()
    revoked = await client.delete(f"{keys}/{issued['id']}", headers={**ADMIN, **AGENT})
    assert revoked.status_code == 200
    again = await client.delete(f"{keys}/{issued['id']}", headers=ADMIN)
    assert again.status_code == 200
    rows = await trail(fetch_all, tenant, "api_key", issued["id"])
    assert [r["action"] for r in rows] == ["create", "revoke"]
    created, revoke = rows
    assert created["changes"]["after"] == {
        "id": issued["id"],
        "name": "reporting",
        "prefix": issued["prefix"],
        "scopes": ["read"],
        "expires_at": "2099-01-01T00:00:00Z",
        "revoked_at": None,
    }
    [change] = revoke["changes"]["diff"]
    assert (change["path"], change["old"]) == ("revoked_at", None)
    assert change["new"].startswith(revoked.json()["revoked_at"][:19])
    assert all(r["user_id"] == "admin" and r["user_agent"] == "ops-console/1.4" for r in rows)
    assert_no_secret(rows, issued["key"])


async def test_keys_managed_by_the_tenant_name_the_key_that_acted(
    client: httpx.AsyncClient, tenant: TenantHandle, fetch_all: FetchAll
) -> None:
    own = {**tenant.headers, **AGENT}
    issued = await client.post(
        "/api/v1/keys", json={"name": "ci", "scopes": ["write"]}, headers=own
    )
    assert issued.status_code == 201
    new_key = issued.json()
    await client.delete(f"/api/v1/keys/{new_key['id']}", headers=own)
    rows = await trail(fetch_all, tenant, "api_key", new_key["id"])
    assert [r["action"] for r in rows] == ["create", "revoke"]
    actor = f"key:{tenant.key[:16]}"
    assert all((r["user_id"], r["ip_address"]) == (actor, "127.0.0.1") for r in rows)
    assert_no_secret(rows, new_key["key"])


async def test_management_rows_belong_to_their_own_tenant_only(
    client: httpx.AsyncClient, tenant: TenantHandle, fetch_all: FetchAll
) -> None:
    other = await create_tenant(client, "Someone Else")
    rows = await fetch_all(AUDITS, tenant.headers, resource_type="tenant")
    assert {r["resource_id"] for r in rows} == {tenant.id}
    assert other.id not in json.dumps(rows)
    verify = await client.get(f"{AUDITS}/verify", headers=other.headers)
    assert (verify.json()["valid"], verify.json()["checked"]) == (True, 2)


async def test_configured_redact_keys_apply_to_the_service_s_own_rows(
    settings: Any, fetch_all: FetchAll
) -> None:
    """REDACT_KEYS reaches every writer: here the rows the service writes about itself."""
    custom = settings.model_copy(update={"redact_keys": "slug,prefix"})
    application = create_app(custom)
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        tenant = await create_tenant(client, "Custom Redaction Co")
    rows = list(reversed(await fetch_all(AUDITS, tenant.headers)))
    created, key = rows
    assert created["changes"]["after"]["slug"] == REDACTED
    assert created["changes"]["after"]["name"] == "Custom Redaction Co"
    assert key["changes"]["after"]["prefix"] == REDACTED
    assert key["changes"]["after"]["scopes"] == ["admin", "read", "write"]
