"""A viewer link in a real browser: Debian's Chromium (Playwright) opens a parent page served
by the test on another site (http://localhost:<port>, the service being on 127.0.0.1), whose
iframe holds the viewer link. Inside the frame: only the records of the link's filters (lists,
detail, statistics, trail), no control that writes, no token in the address; editing the
query string widens nothing; the token is refused as an API key, after revocation and after
expiry; the viewer session left one audit event."""

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.conftest import TenantHandle, create_tenant
from tests.console.served import free_port, serve
from tests.console.test_console_browser import chromium  # noqa: F401  (the browser fixture)

with contextlib.suppress(ImportError):  # the dev extras install it
    from playwright.async_api import Browser, Frame, Page, expect

PARENT = """<!doctype html><html><head><title>Customer app</title></head><body>
<h1>Your activity</h1>
<iframe id="viewer" src="{url}" width="1200" height="900"></iframe>
</body></html>"""


@contextlib.contextmanager
def parent_site(pages: dict[str, str]) -> Iterator[str]:
    """A small site on localhost serving `pages` (path → HTML); yields its origin."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.split("?")[0], "not found").encode()
            self.send_response(200 if self.path.split("?")[0] in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def service(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("viewer-serve") / "serve.log"
    with serve(database_url, log) as base:
        yield base


async def _record(http: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, list[str]]:
    items = [
        {"action_type": "crm_create", "user_id": user, "provider_name": "hubspot",
         "status": "failed" if i == 1 else "success",
         "error_type": f"{user}Error" if i == 1 else None,
         "error_message": "429" if i == 1 else None}
        for user in ("alice", "bob") for i in range(3)
    ]  # fmt: skip
    response = await http.post("/api/v1/logs/actions/batch", json=items, headers=tenant.headers)
    assert response.status_code == 201, response.text
    ids = response.json()["ids"]
    for user in ("alice", "bob"):
        audit = {"action": "update", "resource_type": "contact", "resource_id": "c-9",
                 "before": {"stage": "lead"}, "after": {"stage": user},
                 "user_id": user}  # fmt: skip
        assert (
            await http.post("/api/v1/logs/audits", json=audit, headers=tenant.headers)
        ).is_success
    return {"alice": ids[:3], "bob": ids[3:]}


async def _frame(page: "Page") -> "Frame":
    frame = page.frame_locator("#viewer")
    await expect(frame.locator("main h1")).to_be_visible()
    (inner,) = [f for f in page.frames if f != page.main_frame]
    return inner


async def test_a_viewer_link_inside_an_iframe_of_its_origin(
    chromium: "Browser",  # noqa: F811
    service: str,
) -> None:
    async with httpx.AsyncClient(base_url=service, timeout=30) as http:
        tenant = await create_tenant(http, "Embedding Co")
        ids = await _record(http, tenant)
        pages: dict[str, str] = {}
        with parent_site(pages) as parent:
            minted = await http.post(
                "/api/v1/viewer-tokens",
                json={"filters": {"user_id": "alice"}, "embed_origin": parent, "expires_in": 600},
                headers=tenant.headers,
            )
            assert minted.status_code == 201, minted.text
            link = minted.json()
            pages["/"] = PARENT.format(url=link["url"])
            context = await chromium.new_context()
            try:
                page = await context.new_page()
                await page.goto(parent + "/")
                frame = await _frame(page)
                await _check_views(frame, service, ids)
                await _check_tail(frame, service, http, tenant)
                assert link["token"] not in frame.url and "token" not in frame.url
                assert link["token"] not in page.url
            finally:
                await context.close()

        # The token is no API key; a revoked link and its sessions answer 401 saying so.
        as_key = await http.get("/api/v1/logs/actions", headers={"X-API-Key": link["token"]})
        assert as_key.status_code == 401
        audits = await http.get(
            "/api/v1/logs/audits", params={"resource_type": "viewer_link"}, headers=tenant.headers
        )
        assert [e["resource_id"] for e in audits.json()] == [link["id"]]  # one session, one event
        revoked = await http.delete(f"/api/v1/viewer-tokens/{link['id']}", headers=tenant.headers)
        assert revoked.status_code == 204
        refused = await http.get(link["url"].replace(service, ""))
        assert refused.status_code == 401 and "has been revoked" in refused.text


async def _check_views(frame: "Frame", service: str, ids: dict[str, list[str]]) -> None:
    rows = frame.locator("#viewer-actions tbody tr")
    await expect(rows).to_have_count(3)
    shown = await rows.evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert set(shown) == set(ids["alice"])
    html = await frame.content()
    assert 'method="post"' not in html.lower() and "sign out" not in html.lower()
    assert "Download CSV" not in html

    # Editing the address to another user's filter changes nothing.
    await frame.goto(f"{service}/ui/embed/actions?user_id=bob")
    await expect(frame.locator("#viewer-actions tbody tr")).to_have_count(3)
    html = await frame.content()
    assert not any(i in html for i in ids["bob"])

    await frame.goto(f"{service}/ui/embed/actions/{ids['alice'][0]}")
    await expect(frame.locator("#viewer-action")).to_contain_text(ids["alice"][0])
    missing = await frame.goto(f"{service}/ui/embed/actions/{ids['bob'][0]}")
    assert missing is not None and missing.status == 404

    await frame.goto(f"{service}/ui/embed/stats?user_id=bob")
    await expect(frame.locator("[data-figure=total]")).to_have_text("3")
    await expect(frame.locator("[data-figure=failed]")).to_have_text("1")
    await frame.goto(f"{service}/ui/embed/failed")
    await expect(frame.locator("#viewer-patterns")).to_contain_text("aliceError")
    assert "bobError" not in await frame.content()

    await frame.goto(f"{service}/ui/embed/audits/resource/contact/c-9")
    await expect(frame.locator("#viewer-audits tbody tr")).to_have_count(1)
    await expect(frame.locator("#viewer-audits")).to_contain_text("alice")
    assert "token" not in frame.url


async def _check_tail(
    frame: "Frame", service: str, http: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    """The live tail shows new actions of the viewer's filters only: Bob's, recorded first,
    would arrive before Alice's, so once Alice's is shown Bob's is known to be left out."""
    await frame.goto(f"{service}/ui/embed/tail")
    await expect(frame.locator("#viewer-tail-status")).to_have_text("Live")
    for user in ("bob", "alice"):
        body = {"action_type": f"live_{user}", "user_id": user}
        response = await http.post("/api/v1/logs/actions", json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
    await expect(frame.locator("#viewer-tail")).to_contain_text("live_alice")
    assert "live_bob" not in await frame.content()
