"""API keys: how they are presented, hashed, scoped, expired and revoked."""

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import ADMIN, TenantHandle, create_key

KEYS = "/api/v1/keys"


class TestPresentingAKey:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        response = await client.get(KEYS)
        assert response.status_code == 401
        assert "Missing API key" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_x_api_key_header(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        response = await client.get(KEYS, headers={"X-API-Key": tenant.key})
        assert response.status_code == 200

    async def test_bearer_token(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        response = await client.get(KEYS, headers={"Authorization": f"Bearer {tenant.key}"})
        assert response.status_code == 200

    async def test_malformed_key(self, client: httpx.AsyncClient) -> None:
        for bogus in ["nonsense", "alk_", "alk_zzzz", "alk_0123456789ab_", "x" * 500]:
            response = await client.get(KEYS, headers={"X-API-Key": bogus})
            assert response.status_code == 401, bogus
            assert response.json()["detail"] == "Invalid API key"

    async def test_unknown_key_of_the_right_shape(self, client: httpx.AsyncClient) -> None:
        response = await client.get(KEYS, headers={"X-API-Key": "alk_0123456789ab_secret"})
        assert response.status_code == 401

    async def test_right_prefix_wrong_secret(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        forged = tenant.key[:17] + "A" * (len(tenant.key) - 17)
        assert forged != tenant.key
        response = await client.get(KEYS, headers={"X-API-Key": forged})
        assert response.status_code == 401


class TestScopes:
    async def test_missing_scope(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        read_only = await create_key(client, tenant, ["read"])
        response = await client.get(KEYS, headers={"X-API-Key": read_only})
        assert response.status_code == 403
        assert "'admin' scope" in response.json()["detail"]

    async def test_scopes_are_stored_as_given(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        key = await create_key(client, tenant, ["write", "read", "write"])
        keys = (await client.get(KEYS, headers=tenant.headers)).json()
        created = next(k for k in keys if key.startswith(k["prefix"]))
        assert created["scopes"] == ["read", "write"]


class TestRevocationAndExpiry:
    async def test_revocation_takes_effect_at_once(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        key = await create_key(client, tenant, ["admin"])
        assert (await client.get(KEYS, headers={"X-API-Key": key})).status_code == 200
        listed = (await client.get(KEYS, headers=tenant.headers)).json()
        key_id = next(k["id"] for k in listed if key.startswith(k["prefix"]))
        revoked = await client.delete(f"{KEYS}/{key_id}", headers=tenant.headers)
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        response = await client.get(KEYS, headers={"X-API-Key": key})
        assert response.status_code == 401
        assert response.json()["detail"] == "API key has been revoked"

    async def test_expired_key(
        self, client: httpx.AsyncClient, tenant: TenantHandle, engine: AsyncEngine
    ) -> None:
        soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        key = await create_key(client, tenant, ["admin"], expires_at=soon)
        assert (await client.get(KEYS, headers={"X-API-Key": key})).status_code == 200
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE api_keys SET expires_at = :past WHERE prefix = :prefix"),
                {"past": datetime.now(UTC) - timedelta(seconds=1), "prefix": key[:16]},
            )
        response = await client.get(KEYS, headers={"X-API-Key": key})
        assert response.status_code == 401
        assert response.json()["detail"] == "API key has expired"

    async def test_expiry_in_the_past_is_refused(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        response = await client.post(
            KEYS,
            json={"name": "old", "scopes": ["read"], "expires_at": past},
            headers=tenant.headers,
        )
        assert response.status_code == 422
        assert "expires_at" in str(response.json()["detail"])


class TestKeyStorage:
    async def test_plaintext_key_is_stored_nowhere(
        self, client: httpx.AsyncClient, tenant: TenantHandle, engine: AsyncEngine
    ) -> None:
        async with engine.connect() as connection:
            for table in ("api_keys", "tenants", "audit_logs"):
                rows = (await connection.execute(text(f"SELECT * FROM {table}"))).all()
                dump = repr(rows)
                assert tenant.key not in dump, table
                assert tenant.key.split("_", 2)[2] not in dump, table
            stored = (
                await connection.execute(
                    text("SELECT key_hash FROM api_keys WHERE prefix = :p"), {"p": tenant.key[:16]}
                )
            ).scalar_one()
        assert stored == hashlib.sha256(tenant.key.encode()).hexdigest()

    async def test_listing_never_shows_secrets(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        response = await client.get(KEYS, headers=tenant.headers)
        assert tenant.key not in response.text
        assert "key_hash" not in response.text
        assert response.json()[0]["prefix"] == tenant.key[:16]


class TestTenantIsolation:
    async def test_another_tenants_key_is_404(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        response = await client.delete(f"{KEYS}/{other_tenant.key_id}", headers=tenant.headers)
        assert response.status_code == 404
        still = await client.get(KEYS, headers=other_tenant.headers)
        assert still.status_code == 200
        listed = (await client.get(KEYS, headers=tenant.headers)).json()
        assert other_tenant.key_id not in [k["id"] for k in listed]

    async def test_tenant_comes_only_from_the_key(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        response = await client.post(
            KEYS,
            json={"name": "x", "scopes": ["read"], "tenant_id": other_tenant.id},
            headers=tenant.headers,
        )
        assert response.status_code == 422  # unknown fields are refused, never obeyed
        admin_view = await client.get(
            f"/api/v1/admin/tenants/{other_tenant.id}/keys", headers=ADMIN
        )
        assert len(admin_view.json()) == 1


class TestKeyLookups:
    """Requests that authenticate together share one query; a broken kept connection heals."""

    async def test_concurrent_lookups_share_one_query(self, app: Any, tenant: TenantHandle) -> None:
        engine = app.state.engine  # the service's own, which the lookups use
        statements: list[str] = []

        def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if "FROM api_keys" in statement:
                statements.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", note)
        try:
            prefixes = [tenant.key[:16], "alk_000000000000"] * 10
            found = await asyncio.gather(*(app.state.keys.find(p) for p in prefixes))
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", note)
        assert len(statements) == 1
        assert [key is not None for key in found] == [True, False] * 10
        assert {key.tenant_id for key in found if key is not None} == {UUID(tenant.id)}

    async def test_a_broken_kept_connection_is_replaced(
        self, app: Any, backend: str, client: httpx.AsyncClient, tenant: TenantHandle,
        engine: AsyncEngine,
    ) -> None:  # fmt: skip
        if backend != "postgresql":
            pytest.skip("only PostgreSQL keeps a connection for key lookups")
        assert (await client.get(KEYS, headers=tenant.headers)).status_code == 200
        kept = app.state.keys._kept.held
        pid = (await kept.get_raw_connection()).driver_connection.get_server_pid()
        async with engine.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        response = await client.get(KEYS, headers=tenant.headers)
        assert response.status_code == 200, response.text
