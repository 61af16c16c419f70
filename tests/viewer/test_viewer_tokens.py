"""Viewer links over HTTP: minting, listing and revoking tokens; the embedded console shows
only what a token's filters allow, whatever the query string; the token works nowhere else;
expired, revoked and altered tokens are refused with a page that says so; one audit event
per viewer session."""

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import TenantHandle
from tests.viewer.conftest import TOKENS, Mint, record_data

ORIGIN = "http://testserver"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def open_link(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """Open a viewer link as a browser would: the exchange, then where it redirects."""
    response = await client.get(_path(url))
    assert response.status_code == 303, response.text
    return response


class TestMint:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        assert (await client.post(TOKENS, json={})).status_code == 401

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Any) -> None:
        headers = await scoped_headers(["read", "write"])
        assert (await client.post(TOKENS, json={}, headers=headers)).status_code == 403

    async def test_minted_listed_without_the_token_and_revoked(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle,
        mint: Mint,
    ) -> None:  # fmt: skip
        body = await mint(
            tenant, filters={"user_id": "alice"}, embed_origin="https://App.example.com/"
        )
        assert body["token"].startswith("alv_") and body["url"].endswith(
            f"/ui/embed?token={body['token']}"
        )
        assert (
            body["kinds"] == ["action", "audit"]
            and body["embed_origin"] == "https://app.example.com"
        )
        listed = (await client.get(TOKENS, headers=tenant.headers)).json()
        assert [t["id"] for t in listed] == [body["id"]] and "token" not in listed[0]
        assert body["token"] not in str(listed)
        assert (await client.get(TOKENS, headers=other_tenant.headers)).json() == []
        theirs = await client.delete(f"{TOKENS}/{body['id']}", headers=other_tenant.headers)
        assert theirs.status_code == 404
        assert (
            await client.delete(f"{TOKENS}/{body['id']}", headers=tenant.headers)
        ).status_code == 204
        assert (await client.get(TOKENS, headers=tenant.headers)).json() == []

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"expires_in": 86_401}, "expires_in"),
            ({"embed_origin": "https://app.example.com/path"}, "embed_origin"),
            ({"embed_origin": "javascript:alert(1)"}, "embed_origin"),
            ({"filters": {"tenant_id": "x"}}, "filters"),
            ({"filters": {"action_type": "a", "resource_type": "b"}}, "filters"),
            ({"filters": {"resource_type": "contact"}, "kinds": ["action"]}, "kinds"),
        ],
    )
    async def test_bad_input_names_the_field(
        self, client: httpx.AsyncClient, tenant: TenantHandle, body: Any, field: str
    ) -> None:
        response = await client.post(TOKENS, json=body, headers=tenant.headers)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"][1] == field


class TestEmbeddedConsole:
    async def test_exchange_moves_the_token_into_a_cookie(
        self, client: httpx.AsyncClient, tenant: TenantHandle, mint: Mint
    ) -> None:
        link = await mint(
            tenant, filters={"user_id": "alice"}, embed_origin="https://app.example.com"
        )
        response = await open_link(client, link["url"])
        assert response.headers["location"] == "/ui/embed/actions"
        set_cookie = response.headers["set-cookie"]
        assert link["token"] not in set_cookie
        for attribute in ("Path=/ui/embed", "HttpOnly", "SameSite=none", "Secure", "Partitioned"):
            assert attribute.lower() in set_cookie.lower(), set_cookie
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors https://app.example.com" in csp

    async def test_same_site_cookie_and_no_framing_without_an_origin(
        self, client: httpx.AsyncClient, tenant: TenantHandle, mint: Mint
    ) -> None:
        link = await mint(tenant)
        response = await open_link(client, link["url"])
        assert "samesite=lax" in response.headers["set-cookie"].lower()
        page = await client.get("/ui/embed/actions")
        assert page.status_code == 200
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

    async def test_only_allowed_records_whatever_the_query(
        self, client: httpx.AsyncClient, tenant: TenantHandle, mint: Mint
    ) -> None:
        data = await record_data(client, tenant)
        link = await mint(tenant, filters={"user_id": "alice"})
        await open_link(client, link["url"])
        for query in ("", "?user_id=bob", "?user_id=", "?action_type=crm_create&user_id=bob"):
            page = (await client.get(f"/ui/embed/actions{query}")).text
            assert all(i in page for i in data.alice if "action_type" not in query), query
            assert not any(i in page for i in data.bob), query
        assert data.alice[0] in (await client.get(f"/ui/embed/actions/{data.alice[0]}")).text
        assert (await client.get(f"/ui/embed/actions/{data.bob[0]}")).status_code == 404
        failed = (await client.get("/ui/embed/failed?user_id=bob")).text
        assert "RateLimitError" in failed and "BobOnlyError" not in failed
        stats = (await client.get("/ui/embed/stats?user_id=bob&range=30d")).text
        assert 'data-figure="total">3<' in stats and 'data-figure="failed">1<' in stats
        audits = (await client.get("/ui/embed/audits?user_id=bob")).text
        assert audits.count('class="tag action-update"') == 1
        trail = (await client.get(f"/ui/embed/audits/resource/contact/{data.resource_id}")).text
        assert trail.count('class="tag action-update"') == 1 and ">alice<" in trail
        assert ">bob<" not in trail

    async def test_no_write_control(
        self, client: httpx.AsyncClient, tenant: TenantHandle, mint: Mint
    ) -> None:
        data = await record_data(client, tenant)
        link = await mint(tenant, filters={"user_id": "alice"})
        await open_link(client, link["url"])
        pages = ["/ui/embed/actions", f"/ui/embed/actions/{data.alice[0]}", "/ui/embed/failed",
                 "/ui/embed/stats", "/ui/embed/audits", "/ui/embed/tail"]  # fmt: skip
        for path in pages:
            page = await client.get(path)
            assert page.status_code == 200, path
            html = page.text.lower()
            assert 'method="post"' not in html and "sign out" not in html, path
            assert "download csv" not in html, path
        assert (await client.get("/ui/embed/export")).status_code == 403

    async def test_export_with_can_export_is_narrowed(
        self, client: httpx.AsyncClient, tenant: TenantHandle, mint: Mint
    ) -> None:
        data = await record_data(client, tenant)
        link = await mint(tenant, filters={"user_id": "alice"}, can_export=True)
        await open_link(client, link["url"])
        assert "Download CSV" in (await client.get("/ui/embed/actions")).text
        csv = (await client.get("/ui/embed/export?user_id=bob")).text
        assert all(i in csv for i in data.alice) and not any(i in csv for i in data.bob)

    async def test_kinds_limit_the_pages(
        self, client: httpx.AsyncClient, tenant: TenantHandle, mint: Mint
    ) -> None:
        link = await mint(tenant, filters={"resource_type": "contact"})
        response = await open_link(client, link["url"])
        assert response.headers["location"] == "/ui/embed/audits"
        assert (await client.get("/ui/embed/actions")).status_code == 404
        assert (await client.get("/ui/embed/audits")).status_code == 200

    async def test_theme_and_accent(
        self, client: httpx.AsyncClient, tenant: TenantHandle, mint: Mint
    ) -> None:
        link = await mint(tenant)
        await client.get(_path(link["url"]) + "&theme=dark&accent=%23FF6600")
        page = (await client.get("/ui/embed/actions")).text
        assert 'data-theme="dark"' in page and "/ui/embed/theme.css?accent=ff6600" in page
        css = await client.get("/ui/embed/theme.css?accent=ff6600")
        assert css.text.strip() == ":root { --accent: #ff6600; }"
        ignored = await client.get("/ui/embed/theme.css?accent=red")
        assert ignored.status_code == 200 and ignored.text == ""


class TestTokenRefused:
    async def test_the_token_is_no_api_key_nor_a_console_sign_in(
        self, client: httpx.AsyncClient, tenant: TenantHandle, mint: Mint
    ) -> None:
        link = await mint(tenant)
        api = await client.get("/api/v1/logs/actions", headers={"X-API-Key": link["token"]})
        assert api.status_code == 401
        bearer = {"Authorization": f"Bearer {link['token']}"}
        assert (await client.get("/api/v1/logs/actions", headers=bearer)).status_code == 401
        console = await client.get(f"/ui/actions?token={link['token']}")
        assert console.status_code == 401
        await open_link(client, link["url"])
        assert (await client.get("/ui/actions", follow_redirects=False)).status_code == 303
        sign_in = await client.post(
            "/ui/sign-in", data={"api_key": link["token"]}, headers={"Origin": ORIGIN}
        )
        assert sign_in.status_code == 401

    async def test_altered(
        self, client: httpx.AsyncClient, tenant: TenantHandle, mint: Mint
    ) -> None:
        link = await mint(tenant)
        token = link["token"]
        for altered in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "alv_x", "x"):
            page = await client.get("/ui/embed", params={"token": altered})
            assert page.status_code == 401
            assert "This viewer link is not valid." in page.text
        client.cookies.set("actionlog_viewer", "e30.AAAA", domain="testserver", path="/ui/embed")
        forged = await client.get("/ui/embed/actions")
        assert forged.status_code == 401 and "session has ended" in forged.text

    async def test_revoked_ends_sessions_at_once(
        self, client: httpx.AsyncClient, tenant: TenantHandle, mint: Mint
    ) -> None:
        link = await mint(tenant, embed_origin=ORIGIN)
        await open_link(client, link["url"])
        assert (await client.get("/ui/embed/actions")).status_code == 200
        await client.delete(f"{TOKENS}/{link['id']}", headers=tenant.headers)
        page = await client.get("/ui/embed/actions")
        assert page.status_code == 401 and "has been revoked" in page.text
        assert f"frame-ancestors {ORIGIN}" in page.headers["content-security-policy"]
        again = await client.get(_path(link["url"]))
        assert again.status_code == 401 and "has been revoked" in again.text

    async def test_expired(
        self, client: httpx.AsyncClient, tenant: TenantHandle, mint: Mint
    ) -> None:
        link = await mint(tenant, expires_in=1)
        deadline = asyncio.get_running_loop().time() + 10
        while (page := await client.get(_path(link["url"]))).status_code != 401:
            assert page.status_code == 303
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.2)
        assert "has expired" in page.text
        assert (await client.get(TOKENS, headers=tenant.headers)).json() == []


class TestAudited:
    async def test_one_audit_event_per_viewer_session(
        self, client: httpx.AsyncClient, tenant: TenantHandle, mint: Mint
    ) -> None:
        link = await mint(tenant, filters={"user_id": "alice"})
        await open_link(client, link["url"])
        for path in ("/ui/embed/actions", "/ui/embed/stats", "/ui/embed/audits"):
            assert (await client.get(path)).status_code == 200
        events = await client.get(
            "/api/v1/logs/audits", params={"resource_type": "viewer_link"}, headers=tenant.headers
        )
        ((event,),) = [events.json()]
        assert event["action"] == "session_start" and event["resource_id"] == link["id"]
        assert event["metadata"]["filters"] == {"user_id": "alice"}
        assert event["metadata"]["link_id"] == link["id"]
        assert event["user_agent"] and event["ip_address"]
        await open_link(client, link["url"])  # a second session: a second event
        events = await client.get(
            "/api/v1/logs/audits", params={"resource_type": "viewer_link"}, headers=tenant.headers
        )
        assert len(events.json()) == 2
