"""A schema put through one worker applies on the others: `actionlog serve --workers 2` on
PostgreSQL. Each request goes on a new connection, so the two workers share the requests;
a worker that kept its old compiled version would let about half of them through."""

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, TenantHandle, create_tenant
from tests.live import start_service

CONSECUTIVE = 24


async def _refused_in_a_row(url: str, tenant: TenantHandle, payload: Any, version: int) -> None:
    """Wait (at most 20 s) until CONSECUTIVE new connections in a row are refused under
    `version` of the schema."""
    deadline = asyncio.get_running_loop().time() + 20
    in_a_row = 0
    body = {"action_type": "crm_create", "request_payload": payload}
    while in_a_row < CONSECUTIVE:
        assert asyncio.get_running_loop().time() < deadline, f"v{version} not applied everywhere"
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            response = await http.post(
                "/api/v1/logs/actions", json=body, headers={**tenant.headers, "Connection": "close"}
            )
        refused = response.status_code == 422 and f"v{version})" in response.text
        in_a_row = in_a_row + 1 if refused else 0


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_new_version_applies_on_every_worker(empty_database_url: str) -> None:
    service = await start_service(
        empty_database_url, workers=2, ADMIN_TOKEN=ADMIN_TOKEN, ALERTS_ENABLED="false"
    )
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
            tenant = await create_tenant(http, "Two workers")

            async def put(kind: str) -> None:
                schema = {"type": "object", "properties": {"n": {"type": kind}}}
                response = await http.put(
                    "/api/v1/schemas/crm_create",
                    json={"mode": "enforce", "request_payload": schema},
                    headers=tenant.headers,
                )
                assert response.status_code == 200, response.text

            await put("integer")
            await _refused_in_a_row(service.url, tenant, {"n": "text"}, 1)
            await put("string")
            await _refused_in_a_row(service.url, tenant, {"n": 1}, 2)
    finally:
        await service.stop()
