"""The console in a real browser: Debian's Chromium, driven by Playwright, against a real
`actionlog serve` process with data recorded through the API, on SQLite and PostgreSQL.

Chromium is never downloaded: the tests use /usr/bin/chromium (`make test` installs it with
apt-get when missing). Without it they are skipped, except under CI=true, where that fails.
Every test also checks that the page loaded nothing from another origin and logged no error
(a Content-Security-Policy violation is logged as one).
"""

import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.console.served import XSS, Recorded, record_data, serve

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

try:
    from playwright.async_api import Browser, Page, async_playwright, expect
except ImportError:  # pragma: no cover - the dev extras install it
    async_playwright = None  # type: ignore[assignment]


def _chromium_installed() -> bool:
    return CHROMIUM.exists()


def _read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator["Browser"]:
    if async_playwright is None:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    if not _chromium_installed():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        await browser.close()


@pytest.fixture(scope="session")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """The service, served for real on this backend's test database, with data recorded."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serve(database_url, log) as base:
        yield record_data(base)


class Watched:
    """A page and what it did: requests to other origins, errors in its console."""

    def __init__(self, page: "Page", base: str) -> None:
        self.page = page
        self.origin = urlsplit(base).netloc
        self.foreign: list[str] = []
        self.errors: list[str] = []
        page.on("request", self._request)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _request(self, request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https") and parts.netloc != self.origin:
            self.foreign.append(request.url)


@pytest.fixture
async def page(chromium: "Browser", live: Recorded) -> AsyncIterator["Page"]:
    context = await chromium.new_context(base_url=live.base, accept_downloads=True)
    tab = await context.new_page()
    watched = Watched(tab, live.base)
    yield tab
    await context.close()
    assert watched.foreign == [], f"requests left the origin: {watched.foreign}"
    # A 404/401/403 page the test asked for is logged as a failed resource load; nothing else.
    unexpected = [e for e in watched.errors if "Failed to load resource" not in e]
    assert unexpected == [], f"errors in the page: {unexpected}"


async def sign_in(page: "Page", key: str) -> None:
    await page.goto("/ui/actions")
    await page.fill("#api_key", key)
    await page.click("form[action='/ui/sign-in'] button[type=submit]")


async def test_sign_in_refuses_bad_keys_with_a_message(page: "Page", live: Recorded) -> None:
    await page.goto("/ui/stats")
    assert "/ui/sign-in" in page.url
    await page.fill("#api_key", "alk_000000000000_not-a-key")
    await page.click("button[type=submit]")
    await expect(page.get_by_role("alert")).to_contain_text("Sign-in refused: Invalid API key")
    await page.fill("#api_key", live.write_key)
    await page.click("button[type=submit]")
    await expect(page.get_by_role("alert")).to_contain_text("lacks the 'read' scope")
    await page.fill("#api_key", live.read_key)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/ui/stats$"))
    await expect(page.locator("[data-figure=total]")).to_have_text("73")


async def test_each_view_shows_recorded_data(page: "Page", live: Recorded) -> None:
    await sign_in(page, live.read_key)
    await expect(page.locator("#action-list tbody tr").first).to_be_visible()
    await expect(page.locator("#action-list")).to_contain_text("s3_export")
    await expect(page.locator("#action-list")).to_contain_text("✅")
    await expect(page.locator("#action-list")).to_contain_text("❌")

    await page.click("nav >> text=Failed")
    await expect(page.locator("#patterns")).to_contain_text("RateLimitError")
    await expect(page.locator("#failed-list")).to_contain_text("crm_update")

    await page.click("nav >> text=Statistics")
    await expect(page.locator("[data-figure=total]")).to_have_text("73")
    await expect(page.locator("#chart[data-drawn=true] canvas")).to_be_visible()
    await expect(page.locator("#by-provider_name")).to_contain_text("hubspot")
    await page.select_option("select[name=range]", "7d")
    await expect(page).to_have_url(re.compile(r"range=7d"))
    await expect(page.locator("#chart[data-drawn=true] canvas")).to_be_visible()

    await page.click("nav >> text=Audit")
    await expect(page.locator("#audit-list")).to_contain_text("deal D-100")
    await page.click("#audit-list >> text=deal D-100 >> nth=0")
    await expect(page.locator("article.audit-event")).to_have_count(2)
    changed = page.locator("tr.diff-changed")
    await expect(changed).to_contain_text("stage")
    await expect(changed).to_contain_text('"customer"')

    await page.fill("input[name=at]", "2000-01-01T00:00:00Z")
    await page.click("form.state-at button[type=submit]")
    await expect(page.locator("[data-state=absent]")).to_be_visible()
    await page.fill("input[name=at]", "2999-01-01T00:00:00Z")
    await page.click("form.state-at button[type=submit]")
    await expect(page.locator("[data-state=exists]")).to_contain_text("sequence")
    await expect(page.locator("section.state pre")).to_contain_text('"stage": "customer"')

    await page.click("nav >> text=Audit")
    await page.click("text=Verify chain")
    await expect(page.get_by_role("status")).to_contain_text("The chain is valid")


async def test_filters_narrow_the_list_and_are_in_the_url(page: "Page", live: Recorded) -> None:
    await sign_in(page, live.read_key)
    await page.fill("input[name=provider_name]", "hubspot")
    await page.click("form.filters button[type=submit]")
    await expect(page).to_have_url(re.compile(r"provider_name=hubspot"))
    await expect(page.locator("#action-list tbody tr")).to_have_count(2)
    await page.check("input[name=status][value=failure]")
    await page.click("form.filters button[type=submit]")
    await expect(page.locator("#action-list tbody tr")).to_have_count(1)
    shared = page.url
    await page.goto("/ui/actions")
    await page.goto(shared)  # a bookmarked view opens as it was
    await expect(page.locator("#action-list tbody tr")).to_have_count(1)
    await expect(page.locator("input[name=provider_name]")).to_have_value("hubspot")
    await page.goto("/ui/actions?min_duration_ms=100000")
    await expect(page.locator("#action-list tbody tr")).to_have_count(0)
    await expect(page.locator("p.zero")).to_contain_text("No action matches")


async def test_load_more_appends_every_page(page: "Page", live: Recorded) -> None:
    await sign_in(page, live.read_key)
    await page.goto("/ui/actions?limit=20&source=scheduled_job")
    rows = page.locator("#action-list tbody tr")
    await expect(rows).to_have_count(20)
    for expected in (40, 60, 70):
        await page.click("text=Load more")
        await expect(rows).to_have_count(expected)
    await expect(page.locator("text=Load more")).to_have_count(0)
    links = await page.locator("#action-list tbody tr td:nth-child(2) a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    assert len(set(links)) == 70
    assert {f"/ui/actions/{i}" for i in live.ids} == set(links)


async def test_stored_markup_is_shown_as_text(page: "Page", live: Recorded) -> None:
    await sign_in(page, live.read_key)
    for path in (f"/ui/actions/{live.xss_id}", "/ui/actions?action_type=xss_probe", "/ui/failed"):
        await page.goto(path)
        await expect(page.locator("main")).to_contain_text("<script>window.__xss=1</script>")
        assert await page.evaluate("window.__xss") is None
        assert await page.locator("main img").count() == 0
    await page.goto(f"/ui/actions/{live.xss_id}")
    await expect(page.locator("pre.json").first).to_contain_text(json.dumps({"html": XSS})[2:20])


async def test_detail_view_payloads_error_steps_and_timeline(page: "Page", live: Recorded) -> None:
    await sign_in(page, live.read_key)
    await page.goto("/ui/actions?correlation_id=inc-777&status=failure")
    await page.click("#action-list >> text=crm_update")
    await expect(page).to_have_url(re.compile(live.failed_id))
    await expect(page.locator(".error-box")).to_contain_text("RateLimitError")
    await expect(page.locator(".error-box")).to_contain_text("HubSpot answered 429")
    await expect(page.locator("pre.json").first).to_contain_text('"stage": "lead"')
    steps = page.locator("ol.timeline:not(.causal) li")
    await expect(steps).to_have_count(2)
    await expect(steps.nth(0)).to_contain_text("validate")
    await expect(steps.nth(1)).to_contain_text("call hubspot")
    timeline = page.locator("ol.causal li")
    await expect(timeline).to_have_count(3)
    await expect(timeline.nth(0)).to_contain_text("crm_update")
    await expect(timeline.nth(2)).to_contain_text("alice update deal D-100")
    await expect(timeline.nth(2)).to_contain_text('stage: "lead" → "customer"')
    await page.click(f"ol.causal a[href='/ui/actions/{live.retry_id}']")
    await expect(page.locator("pre.json").nth(1)).to_contain_text('"stage": "customer"')


async def test_session_report_printable_and_downloadable(page: "Page", live: Recorded) -> None:
    await sign_in(page, live.read_key)
    await page.click("nav >> text=Sessions")
    await page.fill("input[name=session_id]", live.session_id)
    await page.click("form.filters button[type=submit]")
    await expect(page.locator("[data-figure=total]")).to_have_text("8")
    await expect(page.locator("[data-figure=failed]")).to_have_text("1")
    await expect(page.locator("#session-failed tbody tr")).to_have_count(1)
    await expect(page.locator("#session-actions tbody tr")).to_have_count(8)
    async with page.expect_download() as info:
        await page.click("text=Download JSON")
    download = await info.value
    assert download.suggested_filename == f"session-{live.session_id}.json"
    report = _read_json(await download.path())
    assert report["summary"]["total"] == 8 and len(report["actions"]) == 8
    await page.emulate_media(media="print")
    await expect(page.locator("header.top")).to_be_hidden()
    await expect(page.locator("#session-actions")).to_be_visible()


async def test_another_tenants_action_is_not_found(page: "Page", live: Recorded) -> None:
    await sign_in(page, live.read_key)
    response = await page.goto(f"/ui/actions/{live.other_id}")
    assert response is not None and response.status == 404
    await expect(page.locator("h1")).to_have_text("Not found")


async def test_sign_out(page: "Page", live: Recorded) -> None:
    await sign_in(page, live.read_key)
    await expect(page.locator("#action-list")).to_be_visible()
    await page.click("text=Sign out")
    await expect(page).to_have_url(re.compile(r"/ui/sign-in$"))
    await page.goto("/ui/actions")
    await expect(page).to_have_url(re.compile(r"/ui/sign-in\?next="))
    cookies = await page.context.cookies()
    assert not [c for c in cookies if c["name"] == "actionlog_console"]


async def test_api_docs_render_with_the_network_cut_off(page: "Page", live: Recorded) -> None:
    origin = urlsplit(live.base).netloc

    async def only_this_origin(route: Any) -> None:
        if urlsplit(route.request.url).netloc in ("", origin):
            await route.continue_()
        else:
            await route.abort()

    await page.route("**/*", only_this_origin)
    await page.goto("/docs")
    await expect(page.locator(".opblock").first).to_be_visible(timeout=15000)
    assert await page.locator(".opblock").count() > 20
    await page.goto("/redoc")
    await expect(page.locator("h1").first).to_contain_text("Action Log Service", timeout=15000)


async def test_live_tail_pause_and_resume(page: "Page", live: Recorded) -> None:
    await sign_in(page, live.read_key)
    await page.click("nav >> text=Live tail")
    await expect(page.locator("#tail-status")).to_have_text("Live", timeout=15000)
    rows = page.locator("#tail-list tbody tr")
    await expect(rows).to_have_count(0)
    async with httpx.AsyncClient(base_url=live.base) as api:

        async def record(key: str, **body: Any) -> None:
            response = await api.post(
                "/api/v1/logs/actions",
                json={"action_type": "tail_probe", **body},
                headers={"X-API-Key": key},
            )
            assert response.status_code == 201, response.text

        await record(live.write_key, status="failed", error_message=XSS)
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("❌ failure")
        await expect(rows.first).to_contain_text("<script>window.__xss=1</script>")
        assert await page.evaluate("window.__xss") is None
        await record(live.other_key, action_type="their_secret")
        await page.click("#tail-toggle")
        await expect(page.locator("#tail-toggle")).to_have_text("Resume")
        await record(live.write_key, user_id="first")
        await record(live.write_key, user_id="second")
        await expect(page.locator("#tail-pending")).to_have_text("2 new")
        await expect(rows).to_have_count(1)
        await page.click("#tail-toggle")
        await expect(rows).to_have_count(3)
        await expect(rows.nth(0)).to_contain_text("second")
        await expect(rows.nth(1)).to_contain_text("first")
        await expect(page.locator("#tail-pending")).to_be_hidden()
    await expect(page.locator("#tail-list")).not_to_contain_text("their_secret")
