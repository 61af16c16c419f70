"""The console's time fields take the API's time forms, and name them when one is not understood."""

import httpx

from tests.conftest import TenantHandle
from tests.console.conftest import SignIn


async def test_relative_and_unix_times_in_console_filters(
    client: httpx.AsyncClient, signed_in: SignIn, tenant: TenantHandle
) -> None:
    body = {"action_type": "console_time_field"}
    response = await client.post("/api/v1/logs/actions", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    browser = await signed_in(tenant.key)
    for since in ("-24h", "yesterday", "1000000000"):
        page = await browser.get("/ui/actions", params={"since": since, "until": "now"})
        assert page.status_code == 200, since
        assert "console_time_field" in page.text, since
    audits = await browser.get("/ui/audits", params={"since": "-7d"})
    assert audits.status_code == 200
    bad = await browser.get("/ui/actions", params={"since": "12/01/2026"})
    assert bad.status_code == 422
    assert "Unix seconds" in bad.text and "-15m" in bad.text
