"""The console shows the action types a tenant records with their schemas, and marks the
actions that failed validation."""

from typing import Any

import httpx

from tests.conftest import TenantHandle

ORIGIN = "http://testserver"


async def test_schemas_page_and_marked_action(app: Any, client: httpx.AsyncClient,
                                              tenant: TenantHandle,
                                              other_tenant: TenantHandle) -> None:  # fmt: skip
    schema = {"type": "object", "required": ["contact"]}
    body = {"mode": "warn", "request_payload": schema}
    response = await client.put("/api/v1/schemas/crm_create", json=body, headers=tenant.headers)
    assert response.status_code == 200
    await client.put("/api/v1/schemas/other_type", json=body, headers=other_tenant.headers)
    bad = await client.post(
        "/api/v1/logs/actions", json={"action_type": "crm_create"}, headers=tenant.headers
    )
    await client.post("/api/v1/logs/actions", json={"action_type": "s3_export"},
                      headers=tenant.headers)  # fmt: skip
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as browser:
        signed = await browser.post(
            "/ui/sign-in", data={"api_key": tenant.key, "next": "/ui/schemas"},
            headers={"Origin": ORIGIN},
        )  # fmt: skip
        assert signed.status_code == 303
        page = (await browser.get("/ui/schemas")).text
        assert 'data-type="crm_create"' in page and 'data-type="s3_export"' in page
        assert "v1 · warn" in page and "other_type" not in page
        assert "/ui/actions?action_type=crm_create&amp;schema_errors=true" in page
        flagged = (await browser.get("/ui/actions?schema_errors=true")).text
        assert bad.json()["id"] in flagged and "s3_export" not in flagged
        detail = (await browser.get(f"/ui/actions/{bad.json()['id']}")).text
        assert 'id="schema-errors"' in detail and "request_payload" in detail
