"""Fixtures of the audit-log tests: recording rows through the API, and the tenant's rows."""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.conftest import TenantHandle

AUDITS = "/api/v1/logs/audits"

Record = Callable[..., Awaitable[dict[str, Any]]]
FetchAll = Callable[..., Awaitable[list[dict[str, Any]]]]


@pytest.fixture
def record(client: httpx.AsyncClient) -> Record:
    """POST one audit row for a tenant (201 expected); defaults make a contact update."""

    async def post(tenant: TenantHandle, **body: Any) -> dict[str, Any]:
        body = {
            "action": "update",
            "resource_type": "contact",
            "resource_id": "c-1",
            "before": {"n": 0},
            "after": {"n": 1},
            **body,
        }
        response = await client.post(AUDITS, json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    return post


@pytest.fixture
def fetch_all(client: httpx.AsyncClient) -> FetchAll:
    """Every page of a listing, following `X-Next-Cursor` to the end."""

    async def fetch(url: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            response = await client.get(url, params=query, headers=headers)
            assert response.status_code == 200, response.text
            rows.extend(response.json())
            cursor = response.headers.get("x-next-cursor")
            if cursor is None:
                return rows

    return fetch
