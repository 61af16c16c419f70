"""The operator's admin API: tenants and their keys, behind ADMIN_TOKEN."""

from uuid import uuid4

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app
from tests.conftest import ADMIN, TenantHandle, create_tenant

TENANTS = "/api/v1/admin/tenants"


class TestAdminToken:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        response = await client.get(TENANTS)
        assert response.status_code == 401
        assert response.json()["detail"] == "Missing or invalid admin token"

    async def test_wrong_token(self, client: httpx.AsyncClient) -> None:
        response = await client.get(TENANTS, headers={"X-Admin-Token": "nope"})
        assert response.status_code == 401

    async def test_tenant_key_is_not_an_admin_token(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        response = await client.get(TENANTS, headers={"X-Admin-Token": tenant.key})
        assert response.status_code == 401

    async def test_disabled_without_admin_token(self, settings: Settings) -> None:
        app = create_app(settings.model_copy(update={"admin_token": None}))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(TENANTS, json={"name": "x"}, headers=ADMIN)
        await app.state.engine.dispose()
        await app.state.maintenance_engine.dispose()
        assert response.status_code == 404
        assert (
            response.json()["detail"] == "The admin API is disabled: set ADMIN_TOKEN to enable it"
        )

    def test_placeholder_token_refused_in_production(self) -> None:
        with pytest.raises(ValueError, match="ADMIN_TOKEN"):
            Settings(environment="production", admin_token="change-me")


class TestCreateTenant:
    async def test_created_with_a_first_key(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            TENANTS, json={"name": "Acme Corp", "retention_days": 90}, headers=ADMIN
        )
        assert response.status_code == 201
        body = response.json()
        assert set(body) >= {"id", "name", "slug", "retention_days", "created_at", "api_key"}
        assert body["slug"].startswith("acme-corp")
        assert body["retention_days"] == 90
        keys = await client.get("/api/v1/keys", headers={"X-API-Key": body["api_key"]})
        assert keys.status_code == 200
        assert keys.json()[0]["id"] == body["api_key_id"]
        assert keys.json()[0]["scopes"] == ["admin", "read", "write"]

    async def test_slug_conflict_is_409(self, client: httpx.AsyncClient) -> None:
        slug = f"s-{uuid4().hex[:10]}"
        first = await client.post(TENANTS, json={"name": "A", "slug": slug}, headers=ADMIN)
        assert first.status_code == 201
        second = await client.post(TENANTS, json={"name": "B", "slug": slug}, headers=ADMIN)
        assert second.status_code == 409
        assert slug in second.json()["detail"]

    async def test_same_name_gets_a_free_slug(self, client: httpx.AsyncClient) -> None:
        name = f"Same {uuid4().hex[:8]}"
        a = await create_tenant(client, name)
        b = await create_tenant(client, name)
        assert a.slug != b.slug

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "name"),
            ({"name": ""}, "name"),
            ({"name": "x" * 256}, "name"),
            ({"name": "ok", "slug": "Not A Slug"}, "slug"),
            ({"name": "ok", "retention_days": 0}, "retention_days"),
            ({"name": "ok", "retention_days": "many"}, "retention_days"),
            ({"name": "ok", "unknown": 1}, "unknown"),
        ],
    )
    async def test_bad_input_names_the_field(
        self, client: httpx.AsyncClient, body: dict[str, object], field: str
    ) -> None:
        response = await client.post(TENANTS, json=body, headers=ADMIN)
        assert response.status_code == 422
        assert field in str(response.json()["detail"])

    async def test_not_json_is_422(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            TENANTS, content=b"{not json", headers={**ADMIN, "content-type": "application/json"}
        )
        assert response.status_code == 422


class TestReadAndUpdateTenants:
    async def test_get_list_patch(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        got = await client.get(f"{TENANTS}/{tenant.id}", headers=ADMIN)
        assert got.status_code == 200
        assert got.json()["slug"] == tenant.slug
        listed = await client.get(TENANTS, params={"limit": 1000}, headers=ADMIN)
        assert tenant.id in [t["id"] for t in listed.json()]
        patched = await client.patch(
            f"{TENANTS}/{tenant.id}", json={"name": "Renamed", "retention_days": 30}, headers=ADMIN
        )
        assert patched.status_code == 200
        assert patched.json()["name"] == "Renamed"
        assert patched.json()["retention_days"] == 30
        assert patched.json()["slug"] == tenant.slug

    async def test_patch_to_a_taken_slug_is_409(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        response = await client.patch(
            f"{TENANTS}/{tenant.id}", json={"slug": other_tenant.slug}, headers=ADMIN
        )
        assert response.status_code == 409

    async def test_patch_null_name_is_422(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        response = await client.patch(f"{TENANTS}/{tenant.id}", json={"name": None}, headers=ADMIN)
        assert response.status_code == 422

    async def test_unknown_tenant_is_404(self, client: httpx.AsyncClient) -> None:
        key_body = {"name": "k", "scopes": ["read"]}
        for method, suffix, body in [
            ("GET", "", None),
            ("PATCH", "", {"name": "k"}),
            ("GET", "/keys", None),
            ("POST", "/keys", key_body),
            ("DELETE", f"/keys/{uuid4()}", None),
        ]:
            url = f"{TENANTS}/{uuid4()}{suffix}"
            response = await client.request(method, url, json=body, headers=ADMIN)
            assert response.status_code == 404, (method, suffix)

    async def test_a_slug_names_a_tenant_too(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        for suffix in ("", "/keys"):
            by_slug = await client.get(f"{TENANTS}/{tenant.slug}{suffix}", headers=ADMIN)
            by_id = await client.get(f"{TENANTS}/{tenant.id}{suffix}", headers=ADMIN)
            assert by_slug.status_code == 200, by_slug.text
            assert by_slug.json() == by_id.json()
        renamed = await client.patch(
            f"{TENANTS}/{tenant.slug}", json={"name": "Renamed"}, headers=ADMIN
        )
        assert renamed.json()["name"] == "Renamed"

    async def test_neither_id_nor_slug_is_404(self, client: httpx.AsyncClient) -> None:
        for ref in ("not-a-slug-of-anyone", "a%00b", "x" * 101):
            response = await client.get(f"{TENANTS}/{ref}", headers=ADMIN)
            assert response.status_code in (404, 422), ref
        response = await client.get(f"{TENANTS}/not-a-slug-of-anyone", headers=ADMIN)
        assert response.json()["detail"] == "tenant 'not-a-slug-of-anyone' not found"


class TestTenantKeys:
    async def test_issue_list_revoke(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        created = await client.post(
            f"{TENANTS}/{tenant.id}/keys",
            json={"name": "ingest", "scopes": ["write"]},
            headers=ADMIN,
        )
        assert created.status_code == 201
        key = created.json()
        assert key["key"].startswith(key["prefix"] + "_")
        listed = await client.get(f"{TENANTS}/{tenant.id}/keys", headers=ADMIN)
        assert [k["name"] for k in listed.json()] == ["default", "ingest"]
        assert "key" not in listed.json()[1]
        revoked = await client.delete(f"{TENANTS}/{tenant.id}/keys/{key['id']}", headers=ADMIN)
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        again = await client.delete(f"{TENANTS}/{tenant.id}/keys/{key['id']}", headers=ADMIN)
        assert again.json()["revoked_at"] == revoked.json()["revoked_at"]

    async def test_key_of_another_tenant_is_404(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        response = await client.delete(
            f"{TENANTS}/{tenant.id}/keys/{other_tenant.key_id}", headers=ADMIN
        )
        assert response.status_code == 404

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": "k", "scopes": []}, "scopes"),
            ({"name": "k", "scopes": ["root"]}, "scopes"),
            ({"name": "k", "scopes": ["read"], "expires_at": "2999-01-01T00:00:00"}, "expires_at"),
            ({"name": "k", "scopes": ["read"], "expires_at": "soon"}, "expires_at"),
            ({"scopes": ["read"]}, "name"),
        ],
    )
    async def test_bad_key_input(
        self, client: httpx.AsyncClient, tenant: TenantHandle, body: dict[str, object], field: str
    ) -> None:
        response = await client.post(f"{TENANTS}/{tenant.id}/keys", json=body, headers=ADMIN)
        assert response.status_code == 422
        assert field in str(response.json()["detail"])
