"""Reproductions of 5xx from the edge, each now a 4xx naming the problem.

The classes, not the cases: integers beyond their column (offsets, durations, cursor values),
timestamps outside the accepted range (queries, bodies, cursors, key expiry), NUL in any text
(filters, paths, names), and JSON numbers that are not JSON (NaN, 1e400) — while integers of
any size are kept exactly, replayed and exported exactly.
"""

import base64
import csv
import io
import json
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, TenantHandle

ACTIONS = "/api/v1/logs/actions"
AUDITS = "/api/v1/logs/audits"
TRAIL = f"{AUDITS}/resource/contact/1"
STATS = "/api/v1/logs/stats"
BIG = 2**64 + 1


def _cursor(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (ACTIONS, {"skip": 2**63}),
        (AUDITS, {"skip": 2**63}),
        (TRAIL, {"skip": 2**63}),
        (ACTIONS, {"min_duration_ms": 2**31}),
        (ACTIONS, {"max_duration_ms": 2**31}),
        (STATS, {"min_duration_ms": 2**31}),
        (f"{ACTIONS}/export", {"min_duration_ms": 2**31}),
        (ACTIONS, {"since": "0001-01-01T00:00:00+14:00"}),
        (ACTIONS, {"until": "9999-12-31T23:59:59-14:00"}),
        (f"{STATS}/timeseries", {"until": "0001-01-01T00:00:00Z"}),
        (f"{STATS}/timeseries", {"interval": "day", "since": "9999-12-31T23:59:59Z"}),
        (f"{ACTIONS}/export", {"since": "0001-01-01T00:00:00Z"}),
        (AUDITS, {"since": "0001-01-01T00:00:00+14:00"}),
        (AUDITS, {"action": "a\x00b"}),
        (AUDITS, {"resource_type": "a\x00b"}),
        (ACTIONS, {"service": "a\x00b"}),
    ],
)
async def test_bad_query_values_are_422(
    client: httpx.AsyncClient, tenant: TenantHandle, path: str, params: dict[str, Any]
) -> None:
    response = await client.get(path, params=params, headers=tenant.headers)
    assert response.status_code == 422, response.text
    name = list(params)[-1]
    assert name in json.dumps(response.json()["detail"])


async def test_admin_listing_bounds_its_offset(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/admin/tenants", params={"skip": 2**63}, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "skip"]


async def test_a_nul_in_the_trail_path_is_422(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    response = await client.get(f"{AUDITS}/resource/x/a%00b", headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["path", "resource_id"]


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        (TRAIL, {"s": 2**63}),
        (TRAIL, {"s": -1}),
        (ACTIONS, {"t": "0001-01-01T00:00:00+14:00", "i": "00000000-0000-0000-0000-000000000000"}),
        (ACTIONS, {"t": "2030-01-01T00:00:00Z", "i": 5}),
        (AUDITS, {"t": "9999-12-31T23:59:59-14:00", "i": "00000000-0000-0000-0000-000000000000"}),
    ],
)
async def test_forged_cursors_are_400(
    client: httpx.AsyncClient, tenant: TenantHandle, path: str, cursor: dict[str, Any]
) -> None:
    response = await client.get(path, params={"cursor": _cursor(cursor)}, headers=tenant.headers)
    assert response.status_code == 400, response.text
    assert "cursor" in response.json()["detail"]


async def test_a_slowest_first_cursor_beyond_the_column_is_400(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    cursor = _cursor({"d": 2**31, "i": "00000000-0000-0000-0000-000000000000"})
    params = {"sort": "execution_time_ms", "cursor": cursor}
    response = await client.get(ACTIONS, params=params, headers=tenant.headers)
    assert response.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"started_at": "9999-12-31T23:59:59-14:00"},
        {"completed_at": "0001-01-01T00:00:00+14:00"},
        {"started_at": "1899-12-31T00:00:00Z"},
        {"steps": [{"step": "s", "status": "ok", "timestamp": "9999-12-31T23:59:59-14:00"}]},
    ],
)
async def test_timestamps_outside_the_range_are_422_in_bodies(
    client: httpx.AsyncClient, tenant: TenantHandle, body: dict[str, Any]
) -> None:
    response = await client.post(ACTIONS, json={"action_type": "x", **body}, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert "1900-01-01" in response.text


async def test_timestamps_outside_the_range_are_422_in_patch_and_steps(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    created = await client.post(
        ACTIONS, json={"action_type": "x", "status": "pending"}, headers=tenant.headers
    )
    action = f"{ACTIONS}/{created.json()['id']}"
    late = "9999-12-31T23:59:59-14:00"
    patched = await client.patch(action, json={"completed_at": late}, headers=tenant.headers)
    assert patched.status_code == 422, patched.text
    step = {"step": "s", "status": "ok", "timestamp": late}
    stepped = await client.post(f"{action}/steps", json=step, headers=tenant.headers)
    assert stepped.status_code == 422, stepped.text


async def test_a_key_expiry_outside_the_range_is_422(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    body = {"name": "k", "scopes": ["read"], "expires_at": "9999-12-31T23:59:59-14:00"}
    response = await client.post(
        f"/api/v1/admin/tenants/{tenant.id}/keys", json=body, headers=ADMIN
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "expires_at"]


@pytest.mark.parametrize("path", ["/api/v1/admin/tenants", "keys"])
async def test_a_nul_in_a_name_is_422_naming_it(
    client: httpx.AsyncClient, tenant: TenantHandle, path: str
) -> None:
    body: dict[str, Any] = {"name": "a\x00b"}
    if path == "keys":
        path, body = f"/api/v1/admin/tenants/{tenant.id}/keys", {**body, "scopes": ["read"]}
    response = await client.post(path, json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "name"]
    assert "NUL" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize("where", ["request_payload", "metadata", "response_data"])
async def test_numbers_that_are_not_json_are_422(
    client: httpx.AsyncClient, tenant: TenantHandle, number: str, where: str
) -> None:
    body = f'{{"action_type": "x", "{where}": {{"n": [1, {number}]}}}}'
    headers = {**tenant.headers, "Content-Type": "application/json"}
    for extra in ({}, {"Idempotency-Key": f"nan-{where}-{number}"}):
        response = await client.post(ACTIONS, content=body, headers={**headers, **extra})
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", where]
        assert "finite" in response.json()["detail"][0]["msg"]


async def test_numbers_that_are_not_json_are_422_in_patch(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    created = await client.post(
        ACTIONS, json={"action_type": "x", "status": "pending"}, headers=tenant.headers
    )
    response = await client.patch(
        f"{ACTIONS}/{created.json()['id']}",
        content='{"metadata": {"n": NaN}}',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text


async def test_big_integers_are_kept_exactly_through_replays_and_both_exports(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    body = {
        "action_type": "big",
        "request_payload": {"n": BIG, "neg": -BIG},
        "metadata": {"m": BIG},
    }
    keyed = {**tenant.headers, "Idempotency-Key": "big-integers"}
    first = await client.post(ACTIONS, json=body, headers=keyed)
    assert first.status_code == 201, first.text
    replay = await client.post(ACTIONS, json=body, headers=keyed)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert first.json()["request_payload"] == {"n": BIG, "neg": -BIG}
    plain = await client.post(ACTIONS, json={**body, "action_type": "big2"}, headers=tenant.headers)
    assert plain.status_code == 201, plain.text

    csv_export = await client.get(
        f"{ACTIONS}/export", params={"format": "csv"}, headers=tenant.headers
    )
    assert csv_export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(csv_export.text)))
    assert len(rows) == 2
    assert all(json.loads(row["request_payload"]) == {"n": BIG, "neg": -BIG} for row in rows)
    ndjson = await client.get(
        f"{ACTIONS}/export", params={"format": "ndjson"}, headers=tenant.headers
    )
    lines = [json.loads(line) for line in ndjson.text.splitlines()]
    assert len(lines) == 2
    assert all(line["metadata"] == {"m": BIG} for line in lines)
    one = await client.get(f"{ACTIONS}/{first.json()['id']}", headers=tenant.headers)
    assert one.json()["request_payload"]["n"] == BIG
