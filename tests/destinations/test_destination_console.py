"""The console's destinations page: state, lag and last error; pause and resume (admin only)."""

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.conftest import TenantHandle, create_key
from tests.console.conftest import ORIGIN, console_client, sign_in
from tests.destinations.conftest import create_destination

SPLUNK = {"url": "http://127.0.0.1:9/", "token": "secret-token-1"}


SignIn = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def signed_in(app: Any) -> AsyncIterator[SignIn]:
    """Open console clients signed in with a key (closed after the test)."""
    async with console_client(app) as first, console_client(app) as second:
        free = [first, second]

        async def open_(key: str) -> httpx.AsyncClient:
            browser = free.pop(0)
            assert (await sign_in(browser, key)).status_code == 303
            return browser

        yield open_


def _token(html: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', html)
    assert found, "no form token on the page"
    return found.group(1)


async def test_lists_and_pauses_and_resumes(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    signed_in: SignIn,
) -> None:
    created = await create_destination(
        client, tenant, name="siem", type="splunk_hec", config=SPLUNK
    )
    theirs = await create_destination(
        client, other_tenant, name="theirs", type="splunk_hec", config=SPLUNK
    )
    browser = await signed_in(tenant.key)
    page = await browser.get("/ui/destinations")
    assert page.status_code == 200
    assert "siem" in page.text and "theirs" not in page.text
    assert "secret-token-1" not in page.text
    assert "events" in page.text and ">active<" in page.text
    path = f"/ui/destinations/{created['id']}/state"
    form = {"token": _token(page.text), "state": "paused"}
    paused = await browser.post(path, data=form, headers={"Origin": ORIGIN})
    assert paused.status_code == 303
    state = await client.get(f"/api/v1/destinations/{created['id']}", headers=tenant.headers)
    assert state.json()["state"] == "paused"
    page = await browser.get("/ui/destinations")
    assert "Resume" in page.text
    resumed = await browser.post(path, data={**form, "state": "active"}, headers={"Origin": ORIGIN})
    assert resumed.status_code == 303
    other = f"/ui/destinations/{theirs['id']}/state"
    assert (await browser.post(other, data=form, headers={"Origin": ORIGIN})).status_code == 404
    forged = await browser.post(path, data={**form, "token": "x"}, headers={"Origin": ORIGIN})
    assert forged.status_code == 403


async def test_a_key_without_admin_sees_but_cannot_change(
    client: httpx.AsyncClient, tenant: TenantHandle, signed_in: SignIn, app: Any
) -> None:
    created = await create_destination(client, tenant, name="ro", type="splunk_hec", config=SPLUNK)
    browser = await signed_in(await create_key(client, tenant, ["read"]))
    page = await browser.get("/ui/destinations")
    assert "ro" in page.text and "Pause" not in page.text
    form = {"token": _token(page.text), "state": "paused"}
    refused = await browser.post(
        f"/ui/destinations/{created['id']}/state", data=form, headers={"Origin": ORIGIN}
    )
    assert refused.status_code == 403
