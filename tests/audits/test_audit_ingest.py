"""The ingest lane (app/core/lane.py) and the audit routes give a request the same answer.

Each request is sent twice: to the application (ordinary POSTs are served by the lane) and to
the same application without the lane (the FastAPI routes). Status and body must match; for
a recorded row, every field but its place in the chain (id, time, sequence, hashes).
"""

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.core.lane import FastLane
from tests.audits.conftest import AUDITS
from tests.conftest import TenantHandle, create_key

BATCH = f"{AUDITS}/batch"
PLACE = ("id", "created_at", "sequence", "prev_hash", "hash")
GOOD = {
    "action": "update",
    "resource_type": "contact",
    "resource_id": "c-1",
    "before": {"a": 1, "token": "t"},
    "after": {"a": 2, "token": "u"},
    "user_id": "u-1",
    "ip_address": "10.0.0.1",
    "user_agent": "probe/1.0",
    "metadata": {"why": "test"},
    "correlation_id": "inc-1",
}


@pytest.fixture(scope="session")
def routes_app(app: Any) -> Any:
    bare = copy.copy(app)
    bare.user_middleware = [m for m in app.user_middleware if m.cls is not FastLane]
    assert len(bare.user_middleware) == len(app.user_middleware) - 1
    bare.middleware_stack = None  # built again on the first request, from the list above
    return bare


@pytest.fixture
async def routes(routes_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=routes_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def without_place(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_place(v) for k, v in value.items() if k not in PLACE}
    if isinstance(value, list):
        return [without_place(v) for v in value]
    return value


async def both(
    lane: httpx.AsyncClient, routes: httpx.AsyncClient, path: str, **request: Any
) -> tuple[int, Any]:
    first = await lane.post(path, **request)
    second = await routes.post(path, **request)
    assert first.status_code == second.status_code, (first.text, second.text)
    assert without_place(first.json()) == without_place(second.json())
    return first.status_code, first.json()


async def test_the_lane_and_the_routes_answer_alike(
    client: httpx.AsyncClient, routes: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    headers = tenant.headers
    same = {**GOOD, "after": GOOD["before"]}
    cases: list[tuple[str, Any, dict[str, str], int]] = [
        (AUDITS, GOOD, headers, 201),
        (AUDITS, same, headers, 200),
        (AUDITS, {**GOOD, "metadata": {"n": "a\x00b"}}, headers, 422),  # the service's rule
        (AUDITS, {**GOOD, "action": ""}, headers, 422),  # the schema's
        (AUDITS, {**GOOD, "tenant_id": tenant.id}, headers, 422),
        (AUDITS, GOOD, {}, 401),
        (AUDITS, GOOD, {"X-API-Key": "alk_not_a_key"}, 401),
        (BATCH, {"events": [GOOD, same, GOOD]}, headers, 201),
        (BATCH, {"events": [same]}, headers, 200),
        (BATCH, {"events": [GOOD, {**GOOD, "before": [1]}]}, headers, 422),
        (BATCH, {"events": [GOOD] * 1001}, headers, 422),
        (BATCH, [GOOD], headers, 422),
    ]
    for path, body, sent, expected in cases:
        status, answer = await both(client, routes, path, json=body, headers=sent)
        assert status == expected, (path, body, answer)
    read_only = {"X-API-Key": await create_key(client, tenant, ["read"])}
    assert (await both(client, routes, AUDITS, json=GOOD, headers=read_only))[0] == 403
    # the recorded rows verify: both paths extended the same chain
    verified = (await client.get(f"{AUDITS}/verify", headers=headers)).json()
    assert verified["valid"] is True
