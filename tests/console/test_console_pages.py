"""The console over HTTP, on both databases: sign-in, security headers, views, isolation, XSS.

The browser tests (test_console_browser.py) drive the same pages in Chromium; these check
what a browser cannot easily show: headers, cookie attributes, status codes, refusals.
"""

import json
import re
from typing import Any

import httpx

from tests.conftest import ADMIN, TenantHandle, create_key
from tests.console.conftest import ORIGIN, SignIn, sign_in

ACTIONS = "/api/v1/logs/actions"
AUDITS = "/api/v1/logs/audits"
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


async def record(client: httpx.AsyncClient, tenant: TenantHandle, **body: Any) -> dict[str, Any]:
    response = await client.post(
        ACTIONS, json={"action_type": "crm_create", **body}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


class TestSignIn:
    async def test_signed_out_pages_redirect_to_sign_in(self, browser: httpx.AsyncClient) -> None:
        response = await browser.get("/ui/actions?status=failed")
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/sign-in?next=%2Fui%2Factions%3Fstatus%3Dfailed"
        page = await browser.get(response.headers["location"])
        assert page.status_code == 200
        assert 'name="api_key"' in page.text
        assert 'value="/ui/actions?status=failed"' in page.text

    async def test_bad_key_is_refused_with_a_message(
        self, browser: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        for key in ("nonsense", tenant.key[:-2] + "xx", ""):
            response = await sign_in(browser, key)
            assert response.status_code == 401
            assert 'role="alert"' in response.text
            assert "set-cookie" not in response.headers
            assert key not in response.text or key == ""

    async def test_key_without_read_scope_is_refused(
        self, client: httpx.AsyncClient, browser: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        write_only = await create_key(client, tenant, ["write"])
        response = await sign_in(browser, write_only)
        assert response.status_code == 403
        assert "lacks the &#39;read&#39; scope" in response.text

    async def test_session_cookie_is_httponly_strict_and_expiring(
        self, browser: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        response = await sign_in(browser, tenant.key, "/ui/stats?range=7d")
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/stats?range=7d"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Path=/ui" in cookie
        assert re.search(r"Max-Age=\d+", cookie)
        assert tenant.key not in cookie
        assert (await browser.get("/ui/actions")).status_code == 200

    async def test_next_never_leaves_the_console(
        self, browser: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        for target in ("https://evil.example/", "//evil.example/ui", "/api/v1/keys", "/ui\\@x"):
            response = await sign_in(browser, tenant.key, target)
            assert response.headers["location"] == "/ui/actions"

    async def test_cross_site_post_is_refused(
        self, browser: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        form = {"api_key": tenant.key}
        response = await browser.post(
            "/ui/sign-in", data=form, headers={"Origin": "https://evil.example"}
        )
        assert response.status_code == 403
        assert "set-cookie" not in response.headers
        response = await browser.post(
            "/ui/sign-in", data=form, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert response.status_code == 403

    async def test_forged_or_altered_cookie_is_signed_out(
        self, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        console = await signed_in(tenant.key)
        cookie = console.cookies["actionlog_console"]
        body, mac = cookie.split(".")
        console.cookies.clear()
        console.cookies.set("actionlog_console", body + "." + mac[::-1], path="/ui")
        assert (await console.get("/ui/actions")).status_code == 303

    async def test_revoking_the_key_ends_the_session_at_once(
        self, client: httpx.AsyncClient, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        key = await create_key(client, tenant, ["read"])
        console = await signed_in(key)
        assert (await console.get("/ui/actions")).status_code == 200
        keys = (await client.get(f"/api/v1/admin/tenants/{tenant.id}/keys", headers=ADMIN)).json()
        key_id = next(k["id"] for k in keys if key.startswith(k["prefix"]))
        revoked = await client.delete(
            f"/api/v1/admin/tenants/{tenant.id}/keys/{key_id}", headers=ADMIN
        )
        assert revoked.status_code in (200, 204)
        response = await console.get("/ui/actions")
        assert response.status_code == 401
        assert "revoked" in response.text

    async def test_sign_out_needs_the_form_token_and_clears_the_cookie(
        self, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        console = await signed_in(tenant.key)
        page = await console.get("/ui/actions")
        token = re.search(r'name="token" value="([^"]+)"', page.text)
        assert token is not None
        refused = await console.post("/ui/sign-out", data={}, headers={"Origin": ORIGIN})
        assert refused.status_code == 403
        response = await console.post(
            "/ui/sign-out", data={"token": token.group(1)}, headers={"Origin": ORIGIN}
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/sign-in"
        assert "Max-Age=0" in response.headers["set-cookie"] or "expires=" in (
            response.headers["set-cookie"].lower()
        )
        assert (await console.get("/ui/actions")).status_code == 303


class TestSecurityHeaders:
    async def test_every_console_page_has_a_strict_csp(
        self, signed_in: SignIn, browser: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        console = await signed_in(tenant.key)
        responses = [
            await browser.get("/ui/sign-in"),
            await browser.get("/ui/actions"),
            *[
                await console.get(path)
                for path in (
                    "/ui/actions",
                    "/ui/failed",
                    "/ui/stats",
                    "/ui/audits",
                    "/ui/audits/verify",
                    "/ui/sessions",
                    "/ui/sessions/s-1",
                    "/ui/tail",
                    "/ui/actions?since=nonsense",
                    "/ui/actions/00000000-0000-0000-0000-000000000000",
                )
            ],
        ]
        for response in responses:
            csp = response.headers["content-security-policy"]
            assert "default-src 'none'" in csp
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert "frame-ancestors 'none'" in csp
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["cache-control"] == "no-store"

    async def test_pages_hold_no_inline_script_and_no_foreign_origin(
        self, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        console = await signed_in(tenant.key)
        for path in ("/ui/actions", "/ui/stats", "/ui/failed", "/ui/audits"):
            html = (await console.get(path)).text
            for tag in re.findall(r"<script[^>]*>", html):
                assert 'src="/ui/static/' in tag or 'type="application/json"' in tag, tag
            assert " on" + "click=" not in html and "style=" not in html
            assert not re.search(r'(src|href)="(https?:)?//', html)


class TestViews:
    async def test_actions_list_filters_and_pages(
        self, client: httpx.AsyncClient, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        for i in range(7):
            await record(client, tenant, action_type="s3_export", provider_name=f"p{i % 2}")
        await record(
            client, tenant, action_type="crm_update", status="failed", error_message="boom"
        )
        console = await signed_in(tenant.key)
        page = await console.get("/ui/actions?action_type=s3_export&provider_name=p0&limit=2")
        assert page.status_code == 200
        assert page.text.count('class="type">s3_export<') == 2
        assert "crm_update" not in page.text
        more = re.search(r'data-more="([^"]+)"', page.text)
        assert more is not None
        rows = await console.get(more.group(1).replace("&amp;", "&"))
        assert rows.status_code == 200
        assert rows.text.count('class="type">s3_export<') == 2  # p0 has 4 of the 7
        final = re.search(r'data-next href="([^"]+)"', rows.text)
        assert final is None
        failed = await console.get("/ui/actions?status=failed&since=&q=")
        assert failed.text.count('<tr class="status-failure">') == 1

    async def test_bad_filter_is_a_422_page_naming_the_field(
        self, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        console = await signed_in(tenant.key)
        response = await console.get("/ui/actions?since=12/01/2026")
        assert response.status_code == 422
        assert "since" in response.text
        response = await console.get("/ui/actions?cursor=garbage")
        assert response.status_code == 400
        assert "cursor" in response.text
        response = await console.get("/ui/stats?range=forever")
        assert response.status_code == 422
        assert "range" in response.text

    async def test_detail_shows_payloads_error_steps_and_correlated_actions(
        self, client: httpx.AsyncClient, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        first = await record(
            client,
            tenant,
            action_type="crm_update",
            status="failed",
            correlation_id="inc-9",
            error_type="RateLimitError",
            error_message="429 from HubSpot",
            request_payload={"email": "a@example.com", "password": "hunter2"},
            steps=[{"step": "validate", "status": "done"}, {"step": "call", "status": "failed"}],
        )
        retry = await record(client, tenant, action_type="crm_update", correlation_id="inc-9")
        console = await signed_in(tenant.key)
        html = (await console.get(f"/ui/actions/{first['id']}")).text
        assert "RateLimitError" in html and "429 from HubSpot" in html
        assert "&#34;email&#34;: &#34;a@example.com&#34;" in html
        assert "hunter2" not in html and "[REDACTED]" in html
        assert html.index(">validate<") < html.index(">call<")
        assert f"/ui/actions/{retry['id']}" in html

    async def test_failed_page_patterns_and_zero_state(
        self,
        client: httpx.AsyncClient,
        signed_in: SignIn,
        tenant: TenantHandle,
        other_tenant: TenantHandle,
    ) -> None:
        empty = await signed_in(other_tenant.key)
        assert "No failed actions in this range" in (await empty.get("/ui/failed")).text
        for n in (3, 4):
            await record(
                client,
                tenant,
                action_type="email_send",
                status="failed",
                error_message=f"mailbox full after {n} tries",
            )
        console = await signed_in(tenant.key)
        html = (await console.get("/ui/failed?range=1h")).text
        assert "mailbox full after &lt;n&gt; tries" in html
        assert re.search(r'<td class="num">2</td>', html)

    async def test_stats_page_totals_breakdowns_and_chart_data(
        self, client: httpx.AsyncClient, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        await record(client, tenant, provider_name="hubspot", execution_time_ms=100)
        await record(
            client, tenant, provider_name="hubspot", status="failed", execution_time_ms=300
        )
        console = await signed_in(tenant.key)
        html = (await console.get("/ui/stats?range=1h")).text
        assert 'data-figure="total">2<' in html
        assert 'data-figure="success-rate">50.0 %<' in html
        assert 'id="by-provider_name"' in html and ">hubspot<" in html
        data = re.search(
            r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S
        )
        assert data is not None
        chart = json.loads(data.group(1))
        assert chart["interval"] == "minute"
        assert sum(chart["failed"]) == 1 and sum(chart["successful"]) == 1
        assert sum(chart["other"]) == 0

    async def test_audit_list_trail_diff_and_verify(
        self, client: httpx.AsyncClient, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        for before, after in ((None, {"city": "Lyon"}), ({"city": "Lyon"}, {"city": "Paris"})):
            body = {
                "action": "update" if before else "create",
                "resource_type": "contact",
                "resource_id": "c/42",
                "before": before,
                "after": after,
                "user_id": "ann",
            }
            assert (await client.post(AUDITS, json=body, headers=tenant.headers)).status_code == 201
        console = await signed_in(tenant.key)
        listing = (await console.get("/ui/audits?resource_type=contact&user_id=ann")).text
        assert "/ui/audits/resource/contact/c/42" in listing
        trail = (await console.get("/ui/audits/resource/contact/c/42")).text
        assert trail.count('class="audit-event"') == 2
        assert '<tr class="diff-changed">' in trail and "&#34;Paris&#34;" in trail
        verify = (await console.get("/ui/audits/verify")).text
        assert "The chain is valid" in verify

    async def test_session_report_html_and_json(
        self, client: httpx.AsyncClient, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        await record(client, tenant, session_id="sess/1", action_type="login")
        await record(client, tenant, session_id="sess/1", action_type="export", status="failed")
        await record(client, tenant, session_id="other", action_type="noise")
        console = await signed_in(tenant.key)
        redirect = await console.get("/ui/sessions?session_id=sess/1")
        assert redirect.headers["location"] == "/ui/sessions/sess%2F1"
        html = (await console.get("/ui/sessions/sess/1")).text
        assert 'data-figure="total">2<' in html and 'data-figure="failed">1<' in html
        assert "noise" not in html
        download = await console.get("/ui/sessions/sess/1?format=json")
        assert (
            download.headers["content-disposition"] == 'attachment; filename="session-sess_1.json"'
        )
        report = download.json()
        assert report["summary"]["total"] == 2 and report["summary"]["failed"] == 1
        assert [a["action_type"] for a in report["actions"]] == ["login", "export"]
        assert [a["action_type"] for a in report["failed"]] == ["export"]


class TestIsolation:
    async def test_another_tenants_records_are_not_found(
        self,
        client: httpx.AsyncClient,
        signed_in: SignIn,
        tenant: TenantHandle,
        other_tenant: TenantHandle,
    ) -> None:
        theirs = await record(
            client,
            other_tenant,
            action_type="secret_op",
            session_id="theirs",
            correlation_id="their-corr",
        )
        body = {
            "action": "create",
            "resource_type": "deal",
            "resource_id": "d-1",
            "after": {"x": 1},
        }
        assert (
            await client.post(AUDITS, json=body, headers=other_tenant.headers)
        ).status_code == 201
        console = await signed_in(tenant.key)
        response = await console.get(f"/ui/actions/{theirs['id']}")
        assert response.status_code == 404
        assert "secret_op" not in (await console.get("/ui/actions")).text
        assert "secret_op" not in (await console.get("/ui/actions?correlation_id=their-corr")).text
        assert "secret_op" not in (await console.get("/ui/sessions/theirs")).text
        assert "secret_op" not in (await console.get("/ui/stats")).text
        assert "d-1" not in (await console.get("/ui/audits")).text
        assert (
            "No audit event for this resource"
            in (await console.get("/ui/audits/resource/deal/d-1")).text
        )


class TestSafeRendering:
    async def test_stored_markup_is_shown_as_text_everywhere(
        self, client: httpx.AsyncClient, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        action = await record(
            client,
            tenant,
            action_type=XSS,
            action_name=XSS,
            provider_name=XSS,
            status="failed",
            error_message=XSS,
            error_type=XSS,
            user_id=XSS,
            session_id="xss",
            correlation_id=XSS,
            request_payload={XSS: XSS},
            steps=[{"step": XSS, "status": "failed", "details": {"x": XSS}}],
        )
        body = {
            "action": "update",
            "resource_type": "contact",
            "resource_id": XSS,
            "before": {"n": XSS},
            "after": {"n": 1},
            "user_id": XSS,
        }
        assert (await client.post(AUDITS, json=body, headers=tenant.headers)).status_code == 201
        console = await signed_in(tenant.key)
        paths = [
            "/ui/actions",
            f"/ui/actions/{action['id']}",
            "/ui/failed",
            "/ui/stats",
            "/ui/sessions/xss",
            "/ui/audits",
            f"/ui/audits/resource/contact/{XSS}",
            f"/ui/actions?q={XSS}",
        ]
        for path in paths:
            html = (await console.get(path)).text
            assert "<script>alert" not in html, path
            assert "<img src=x" not in html, path
            assert "&lt;script&gt;alert" in html or "\\u003cscript" in html, path


class TestApiDocs:
    async def test_docs_and_redoc_load_only_local_assets(self, client: httpx.AsyncClient) -> None:
        for path in ("/docs", "/redoc"):
            html = (await client.get(path)).text
            urls = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert urls and all(u.startswith("/") for u in urls), urls
            assert "fonts.googleapis" not in html and "cdn.jsdelivr" not in html
            for url in urls:
                asset = await client.get(url)
                assert asset.status_code == 200, url
        assert '"validatorUrl": null' in (await client.get("/docs")).text


class TestPaging:
    async def test_audit_list_loads_more(
        self, client: httpx.AsyncClient, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        for n in range(53):
            body = {"action": "create", "resource_type": "ticket", "resource_id": f"t-{n}"}
            assert (await client.post(AUDITS, json=body, headers=tenant.headers)).status_code == 201
        console = await signed_in(tenant.key)
        page = (await console.get("/ui/audits?resource_type=ticket")).text
        assert page.count("/ui/audits/resource/ticket/") == 50
        more = re.search(r'data-more="([^"]+)"', page)
        link = re.search(r'<a href="([^"]+)" data-more=', page)
        assert more is not None and link is not None
        assert "fragment" not in link.group(1)
        rows = (await console.get(more.group(1).replace("&amp;", "&"))).text
        assert rows.count("/ui/audits/resource/ticket/") == 3
        assert "data-next" not in rows
        assert '/ui/audits/resource/ticket/t-0"' in rows  # the oldest comes last

    async def test_failed_list_loads_more_within_its_range(
        self, client: httpx.AsyncClient, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        batch = [{"action_type": "job", "status": "failed", "error_message": "x"}] * 55
        response = await client.post(f"{ACTIONS}/batch", json=batch, headers=tenant.headers)
        assert response.status_code == 201
        await record(client, tenant, action_type="job")  # a success: never listed
        console = await signed_in(tenant.key)
        page = (await console.get("/ui/failed?range=1h")).text
        more = re.search(r'data-more="([^"]+)"', page)
        assert more is not None
        rows = (await console.get(more.group(1).replace("&amp;", "&"))).text
        assert rows.count('<tr class="status-failure">') == 5


class TestSettings:
    async def test_frame_ancestors_come_from_the_setting(self, settings: Any) -> None:
        from app.main import create_app

        framed = create_app(
            settings.model_copy(
                update={"console_frame_ancestors": "'self' https://intranet.example"}
            )
        )
        transport = httpx.ASGITransport(app=framed)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
            response = await client.get("/ui/sign-in")
        csp = response.headers["content-security-policy"]
        assert csp.endswith("frame-ancestors 'self' https://intranet.example")
        await framed.state.engine.dispose()
        await framed.state.maintenance_engine.dispose()


def test_session_cookies_expire_and_resist_tampering() -> None:
    from uuid import uuid4

    from app.console.session import SessionSigner

    signer = SessionSigner(b"0123456789abcdef0123456789abcdef", lifetime_seconds=60)
    key_id = uuid4()
    cookie = signer.issue(key_id, "alk_0123456789ab", now=1000)
    session = signer.read(cookie, now=1059)
    assert session is not None and session.key_id == key_id
    assert signer.read(cookie, now=1060) is None  # expired
    other = SessionSigner(b"another-secret-of-thirty-two-byte", lifetime_seconds=60)
    assert other.read(cookie, now=1001) is None  # signed with another secret
    body, mac = cookie.split(".")
    assert signer.read(body[:-2] + "xx." + mac, now=1001) is None
    assert signer.read("garbage", now=1001) is None
    assert signer.check_form_token(session, signer.form_token(session))
    assert not signer.check_form_token(session, "forged")


class TestTimelineAndState:
    async def test_detail_timeline_holds_audit_events_of_the_correlation_id(
        self, client: httpx.AsyncClient, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        body = {"action": "update", "resource_type": "deal", "resource_id": "D-9",
                "before": {"stage": "lead"}, "after": {"stage": "won"}, "user_id": "user-x",
                "correlation_id": "inc-tl"}  # fmt: skip
        assert (await client.post(AUDITS, json=body, headers=tenant.headers)).status_code == 201
        failed = await record(client, tenant, status="failed", correlation_id="inc-tl")
        console = await signed_in(tenant.key)
        html = (await console.get(f"/ui/actions/{failed['id']}")).text
        timeline = html[html.index('class="timeline causal"') :]
        assert timeline.index('<span class="tag">audit</span>') < timeline.index(
            '<span class="tag">action</span>'
        )
        assert "user-x update" in timeline and "/ui/audits/resource/deal/D-9" in timeline
        listing = (await console.get("/ui/audits?correlation_id=inc-tl")).text
        assert "deal D-9" in listing and 'name="correlation_id" value="inc-tl"' in listing

    async def test_trail_shows_the_state_at_a_time(
        self, client: httpx.AsyncClient, signed_in: SignIn, tenant: TenantHandle
    ) -> None:
        rows = []
        for action, before, after in (
            ("create", None, {"stage": "lead"}),
            ("update", {"stage": "lead"}, {"stage": "won"}),
            ("delete", {"stage": "won"}, None),
        ):
            body = {"action": action, "resource_type": "deal", "resource_id": "D-s",
                    "before": before, "after": after}  # fmt: skip
            response = await client.post(AUDITS, json=body, headers=tenant.headers)
            rows.append(response.json())
        console = await signed_in(tenant.key)
        url = "/ui/audits/resource/deal/D-s"
        first = (await console.get(url, params={"at": rows[0]["created_at"]})).text
        assert 'data-state="exists"' in first and "&#34;lead&#34;" in first
        assert f"sequence {rows[0]['sequence']}" in first
        gone = (await console.get(url, params={"at": "2999-01-01T00:00:00Z"})).text
        assert 'data-state="deleted"' in gone
        early = (await console.get(url, params={"at": "2000-01-01T00:00:00"})).text
        assert 'data-state="absent"' in early
        bad = await console.get(url, params={"at": "soon"})
        assert bad.status_code == 422 and "at" in bad.text


async def test_actions_sorted_slowest_first(
    client: httpx.AsyncClient, signed_in: SignIn, tenant: TenantHandle
) -> None:
    for ms in (30, 900, 5):
        await record(client, tenant, action_type=f"took_{ms}", execution_time_ms=ms)
    await record(client, tenant, action_type="untimed")
    console = await signed_in(tenant.key)
    html = (await console.get("/ui/actions?sort=execution_time_ms&limit=2")).text
    assert re.findall(r'class="type">(took_\d+)<', html) == ["took_900", "took_30"]
    more = re.search(r'data-more="([^"]+)"', html)
    assert more is not None
    rows = (await console.get(more.group(1).replace("&amp;", "&"))).text
    assert re.findall(r'class="type">(\w+)<', rows) == ["took_5"]
    assert (await console.get("/ui/actions?sort=fastest")).status_code == 422


async def test_tail_needs_a_session_and_valid_filters(
    browser: httpx.AsyncClient, signed_in: SignIn, tenant: TenantHandle
) -> None:
    response = await browser.get("/ui/tail/events")
    assert response.status_code == 303 and response.headers["location"].startswith("/ui/sign-in")
    console = await signed_in(tenant.key)
    page = (await console.get("/ui/tail?provider_name=hubspot&q=ignored")).text
    assert 'data-source="/ui/tail/events?provider_name=hubspot"' in page
    bad = await console.get("/ui/tail/events?status=nonsense")
    assert bad.status_code == 422 and "status" in bad.text
