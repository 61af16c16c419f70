"""Retention policies: set by the operator or the tenant itself (`admin` scope), audited;
and the published checkpoint signing key."""

import base64
import hashlib

import httpx

from tests.conftest import ADMIN, TenantHandle, create_key, first_error

POLICY = "/api/v1/retention"
PUBLIC_KEY = "/api/v1/logs/audits/public-key"


async def last_audit(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, object]:
    rows = (await client.get("/api/v1/logs/audits", headers=tenant.headers)).json()
    return rows[0]  # type: ignore[no-any-return]


class TestOwnPolicy:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(POLICY)).status_code == 401
        assert (await client.patch(POLICY, json={"retention_days": 3})).status_code == 401

    async def test_missing_scope(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        headers = {"X-API-Key": await create_key(client, tenant, ["read", "write"])}
        assert (await client.get(POLICY, headers=headers)).status_code == 403
        response = await client.patch(POLICY, json={"retention_days": 3}, headers=headers)
        assert response.status_code == 403

    async def test_set_and_clear_is_audited(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        empty = await client.get(POLICY, headers=tenant.headers)
        assert empty.json() == {"retention_days": None, "audit_retention_days": None}
        response = await client.patch(
            POLICY, json={"retention_days": 30, "audit_retention_days": 365}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"retention_days": 30, "audit_retention_days": 365}
        audit = await last_audit(client, tenant)
        assert audit["action"] == "update" and audit["resource_type"] == "tenant"
        assert audit["user_id"] == f"key:{tenant.key[:16]}"
        assert audit["changes"]["diff"] == [  # type: ignore[index]
            {"path": "audit_retention_days", "kind": "changed", "old": None, "new": 365},
            {"path": "retention_days", "kind": "changed", "old": None, "new": 30},
        ]
        cleared = await client.patch(
            POLICY, json={"audit_retention_days": None}, headers=tenant.headers
        )
        assert cleared.json() == {"retention_days": 30, "audit_retention_days": None}
        seen = await client.get(f"/api/v1/admin/tenants/{tenant.id}", headers=ADMIN)
        assert seen.json()["audit_retention_days"] is None
        assert seen.json()["retention_days"] == 30

    async def test_bad_values(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        for body, field in (
            ({"retention_days": 0}, "retention_days"),
            ({"audit_retention_days": "long"}, "audit_retention_days"),
            ({"audit_retention_days": 40000}, "audit_retention_days"),
            ({"keep": 3}, "keep"),
        ):
            response = await client.patch(POLICY, json=body, headers=tenant.headers)
            assert response.status_code == 422, body
            assert first_error(response).startswith(field), response.text

    async def test_isolated(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        await client.patch(POLICY, json={"retention_days": 9}, headers=tenant.headers)
        theirs = await client.get(POLICY, headers=other_tenant.headers)
        assert theirs.json()["retention_days"] is None


class TestOperatorPolicy:
    async def test_admin_sets_audit_retention(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        url = f"/api/v1/admin/tenants/{tenant.id}"
        response = await client.patch(url, json={"audit_retention_days": 400}, headers=ADMIN)
        assert response.status_code == 200
        assert response.json()["audit_retention_days"] == 400
        audit = await last_audit(client, tenant)
        assert audit["user_id"] == "admin"
        created = await client.post(
            "/api/v1/admin/tenants",
            json={"name": "Kept", "audit_retention_days": 0},
            headers=ADMIN,
        )
        assert created.status_code == 422
        assert first_error(created).startswith("audit_retention_days")


class TestPublicKey:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(PUBLIC_KEY)).status_code == 401

    async def test_the_key_is_published(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        response = await client.get(PUBLIC_KEY, headers=tenant.headers)
        assert response.status_code == 200
        body = response.json()
        assert body["algorithm"] == "Ed25519"
        raw = base64.b64decode(body["public_key"])
        assert len(raw) == 32
        assert body["key_id"] == hashlib.sha256(raw).hexdigest()
        assert body["keys"][0]["current"] is True
        assert body["keys"][0]["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
        # one service, one key: every tenant sees the same
        assert (await client.get(PUBLIC_KEY, headers=other_tenant.headers)).json() == body


class TestSigningKey:
    async def test_generated_once_and_kept(self, app: object) -> None:
        from app.audits.signing import SignerSource

        sessionmaker = app.state.sessionmaker  # type: ignore[attr-defined]
        first = await SignerSource(sessionmaker, None).get()
        again = await SignerSource(sessionmaker, None).get()
        assert first.key_id == again.key_id
        assert first.sign(b"x") == again.sign(b"x")

    async def test_a_key_from_the_setting(self, app: object) -> None:
        import pytest
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from app.audits.signing import Signer, SignerSource, public_keys

        sessionmaker = app.state.sessionmaker  # type: ignore[attr-defined]
        raw_key = base64.b64encode(bytes(range(32))).decode()
        signer = await SignerSource(sessionmaker, raw_key).get()
        expected = Signer.of(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
        assert signer.key_id == expected.key_id
        async with sessionmaker() as session:
            assert (await public_keys(session))[signer.key_id] == signer.public_key
        for bad in ("not base64!", base64.b64encode(b"short").decode()):
            with pytest.raises(ValueError, match="AUDIT_SIGNING_KEY"):
                await SignerSource(sessionmaker, bad).get()
