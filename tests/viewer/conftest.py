"""Fixtures of the viewer tests: a tenant with actions and audit events of two users, and
viewer links minted through the API."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import TenantHandle

TOKENS = "/api/v1/viewer-tokens"


@dataclass
class Recorded:
    alice: list[str]  # action ids
    bob: list[str]
    resource_id: str  # a contact changed by both


async def record_data(client: httpx.AsyncClient, tenant: TenantHandle) -> Recorded:
    """Alice: 3 actions (one failed), Bob: 2; a contact updated once by each."""
    items = [
        {"action_type": "crm_create", "user_id": "alice", "provider_name": "hubspot",
         "request_payload": {"who": "alice-0"}},
        {"action_type": "crm_update", "user_id": "alice", "status": "failed",
         "error_type": "RateLimitError", "error_message": "429 from HubSpot"},
        {"action_type": "s3_export", "user_id": "alice", "execution_time_ms": 120},
        {"action_type": "crm_create", "user_id": "bob", "request_payload": {"who": "bob-0"}},
        {"action_type": "crm_update", "user_id": "bob", "status": "failed",
         "error_type": "BobOnlyError", "error_message": "bob's failure"},
    ]  # fmt: skip
    response = await client.post("/api/v1/logs/actions/batch", json=items, headers=tenant.headers)
    assert response.status_code == 201, response.text
    ids = response.json()["ids"]
    for user, after in (("alice", "A"), ("bob", "B")):
        audit = {
            "action": "update", "resource_type": "contact", "resource_id": "c-1",
            "before": {"name": "x"}, "after": {"name": after}, "user_id": user,
        }  # fmt: skip
        response = await client.post("/api/v1/logs/audits", json=audit, headers=tenant.headers)
        assert response.status_code == 201, response.text
    return Recorded(alice=ids[:3], bob=ids[3:], resource_id="c-1")


Mint = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def mint(client: httpx.AsyncClient) -> Mint:
    """POST a viewer token for a tenant (201 expected); returns the answer."""

    async def post(tenant: TenantHandle, **body: Any) -> dict[str, Any]:
        response = await client.post(TOKENS, json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    return post
