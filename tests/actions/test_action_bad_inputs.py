"""The table of bad inputs: each answers its 4xx with a `detail` naming the problem, never a 500."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.actions.conftest import ACTIONS, BATCH, STATS, Record, detail_text
from tests.conftest import TenantHandle

RUNNING = "{running}"  # replaced by the id of a running action of the tenant


def deep(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


CASES: list[tuple[str, str, dict[str, Any], Any, int, str]] = [
    # method, path, query, JSON body, status, text the detail must contain
    ("POST", ACTIONS, {}, {}, 422, "action_type"),
    ("POST", ACTIONS, {}, {"action_type": 5}, 422, "action_type"),
    ("POST", ACTIONS, {}, {"action_type": ""}, 422, "action_type"),
    ("POST", ACTIONS, {}, {"action_type": "a" * 101}, 422, "action_type"),
    ("POST", ACTIONS, {}, {"action_type": "a", "status": "done"}, 422, "unknown status 'done'"),
    ("POST", ACTIONS, {}, {"action_type": "a", "status": 3}, 422, "status"),
    (
        "POST",
        ACTIONS,
        {},
        {"action_type": "a", "execution_time_ms": "fast"},
        422,
        "execution_time_ms",
    ),
    ("POST", ACTIONS, {}, {"action_type": "a", "execution_time_ms": -5}, 422, "execution_time_ms"),
    ("POST", ACTIONS, {}, {"action_type": "a", "started_at": "yesterday"}, 422, "started_at"),
    ("POST", ACTIONS, {}, {"action_type": "a", "parent_id": "42"}, 422, "parent_id"),
    ("POST", ACTIONS, {}, {"action_type": "a", "request_payload": [1]}, 422, "request_payload"),
    ("POST", ACTIONS, {}, {"action_type": "a", "metadata": "x"}, 422, "metadata"),
    ("POST", ACTIONS, {}, {"action_type": "a", "response_data": deep(33)}, 422, "response_data"),
    ("POST", ACTIONS, {}, {"action_type": "a", "colour": "red"}, 422, "colour"),
    (
        "POST",
        ACTIONS,
        {},
        {
            "action_type": "a",
            "started_at": "2030-01-02T00:00:00Z",
            "completed_at": "2030-01-01T00:00:00Z",
        },
        422,
        "completed_at must not be before started_at",
    ),
    ("POST", ACTIONS, {}, [{"action_type": "a"}], 422, "body"),
    ("POST", BATCH, {}, {"action_type": "a"}, 422, "list"),
    (
        "POST",
        BATCH,
        {},
        [{"action_type": "a"}, {"action_type": None}],
        422,
        "'body', 1, 'action_type'",
    ),
    ("PATCH", f"{ACTIONS}/{RUNNING}", {}, {"status": "nearly"}, 422, "status"),
    ("PATCH", f"{ACTIONS}/not-a-uuid", {}, {"status": "success"}, 422, "action_id"),
    ("POST", f"{ACTIONS}/not-a-uuid/steps", {}, {"step": "s", "status": "ok"}, 422, "action_id"),
    ("POST", f"{ACTIONS}/{RUNNING}/steps", {}, {"step": 1, "status": "ok"}, 422, "step"),
    ("GET", ACTIONS, {"limit": 0}, None, 422, "limit"),
    ("GET", ACTIONS, {"limit": 1001}, None, 422, "limit"),
    ("GET", ACTIONS, {"limit": "ten"}, None, 422, "limit"),
    ("GET", ACTIONS, {"skip": -1}, None, 422, "skip"),
    ("GET", ACTIONS, {"status": "weird"}, None, 422, "unknown status 'weird'"),
    ("GET", ACTIONS, {"order": "sideways"}, None, 422, "order"),
    ("GET", ACTIONS, {"since": "not-a-date"}, None, 422, "since"),
    (
        "GET",
        ACTIONS,
        {"since": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"},
        None,
        422,
        "since must not be after until",
    ),
    (
        "GET",
        ACTIONS,
        {"min_duration_ms": 10, "max_duration_ms": 1},
        None,
        422,
        "min_duration_ms must not exceed max_duration_ms",
    ),
    ("GET", ACTIONS, {"min_duration_ms": -1}, None, 422, "min_duration_ms"),
    ("GET", ACTIONS, {"parent_id": "nope"}, None, 422, "parent_id"),
    ("GET", ACTIONS, {"cursor": "%%%not-a-cursor"}, None, 400, "cursor is malformed"),
    ("GET", ACTIONS, {"cursor": "eyJ4IjogMX0"}, None, 400, "cursor is malformed"),
    ("GET", f"{ACTIONS}/not-a-uuid", {}, None, 422, "action_id"),
    ("GET", f"{ACTIONS}/00000000-0000-0000-0000-000000000000", {}, None, 404, "not found"),
    ("GET", f"{ACTIONS}/failed/recent", {"minutes": 0}, None, 422, "minutes"),
    ("GET", f"{ACTIONS}/failed/recent", {"minutes": 1441}, None, 422, "minutes"),
    ("GET", f"{ACTIONS}/failed/recent", {"limit": 0}, None, 422, "limit"),
    ("GET", f"{ACTIONS}/failed/recent", {"limit": 101}, None, 422, "limit"),
    ("GET", f"{ACTIONS}/export", {"format": "xml"}, None, 422, "format"),
    ("GET", f"{ACTIONS}/export", {"status": "nope"}, None, 422, "status"),
    (
        "GET",
        STATS,
        {"since": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"},
        None,
        422,
        "since",
    ),
    ("GET", f"{STATS}/timeseries", {"interval": "week"}, None, 422, "interval"),
    (
        "GET",
        f"{STATS}/timeseries",
        {"interval": "minute", "since": "2030-01-01T00:00:00Z", "until": "2030-01-31T00:00:00Z"},
        None,
        422,
        "more than 1500 minute buckets",
    ),
    ("GET", f"{STATS}/users", {"limit": 0}, None, 422, "limit"),
    ("GET", f"{STATS}/failures", {"limit": 1001}, None, 422, "limit"),
]


@pytest.fixture
async def running(record: Record, tenant: TenantHandle) -> dict[str, Any]:
    return await record(tenant, status="in_progress")


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "status", "expected"),
    CASES,
    ids=[f"{c[0]} {c[1]} {c[2] or ''} -> {c[4]} {c[5][:30]}" for c in CASES],
)
async def test_bad_input(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    running: dict[str, Any],
    method: str,
    path: str,
    params: dict[str, Any],
    body: Any,
    status: int,
    expected: str,
) -> None:
    url = path.replace(RUNNING, running["id"])
    kw: dict[str, Any] = {"params": params, "headers": tenant.headers}
    if body is not None:
        kw["json"] = body
    response = await client.request(method, url, **kw)
    assert response.status_code == status, response.text
    assert expected in detail_text(response)


async def test_malformed_json_is_422(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    headers = {**tenant.headers, "Content-Type": "application/json"}
    response = await client.post(ACTIONS, content=b'{"action_type": ', headers=headers)
    assert response.status_code == 422
    assert "JSON" in detail_text(response)


async def test_streamed_body_over_the_limit_is_413(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"action_type": "x", "request_payload": {"blob": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}}'

    headers = {**tenant.headers, "Content-Type": "application/json"}
    response = await client.post(ACTIONS, content=chunks(), headers=headers)
    assert response.status_code == 413
    assert "exceeds the limit" in detail_text(response)


UNSTORABLE: list[tuple[str, str, bytes, str]] = [
    # method, path, raw JSON body, text the detail must contain; JSON escapes carry the
    # characters that PostgreSQL cannot store (NUL) or that are not Unicode (lone surrogates)
    ("POST", ACTIONS, rb'{"action_type": "a\u0000b"}', "NUL"),
    ("POST", ACTIONS, rb'{"action_type": "a", "error_message": "\ud800"}', "surrogates"),
    ("POST", ACTIONS, rb'{"action_type": "a", "request_payload": {"k": "x\u0000"}}', "NUL"),
    ("POST", ACTIONS, rb'{"action_type": "a", "metadata": {"\ud800": 1}}', "surrogates"),
    (
        "POST",
        BATCH,
        rb'[{"action_type": "a"}, {"action_type": "a", "response_data": ["\u0000"]}]',
        "'body', 1, 'response_data'",
    ),
    ("PATCH", f"{ACTIONS}/{RUNNING}", rb'{"metadata": {"k": "\u0000"}}', "NUL"),
    ("POST", f"{ACTIONS}/{RUNNING}/steps", rb'{"step": "s\u0000", "status": "ok"}', "NUL"),
    (
        "POST",
        f"{ACTIONS}/{RUNNING}/steps",
        rb'{"step": "s", "status": "ok", "details": '
        rb'{"k": "\ud800"}}',
        "surrogates",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    UNSTORABLE,
    ids=[f"{c[0]} {c[1]} {c[2][:40]!r}" for c in UNSTORABLE],
)
async def test_text_the_database_cannot_store_is_422(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    running: dict[str, Any],
    method: str,
    path: str,
    body: bytes,
    expected: str,
) -> None:
    url = path.replace(RUNNING, running["id"])
    headers = {**tenant.headers, "Content-Type": "application/json"}
    response = await client.request(method, url, content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert expected in detail_text(response)
    listed = await client.get(ACTIONS, headers=tenant.headers)
    assert len(listed.json()) == 1  # only the running action: nothing else was stored


async def test_nul_in_a_filter_is_422(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    response = await client.get(ACTIONS, params={"user_id": "a\x00"}, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert "NUL" in detail_text(response)


async def test_an_escaped_backslash_before_u0000_is_plain_text(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    body = rb'{"action_type": "a", "request_payload": {"k": "\\u0000 is not NUL"}}'
    headers = {**tenant.headers, "Content-Type": "application/json"}
    response = await client.post(ACTIONS, content=body, headers=headers)
    assert response.status_code == 201, response.text
    stored = await client.get(f"{ACTIONS}/{response.json()['id']}", headers=tenant.headers)
    assert stored.json()["request_payload"] == {"k": "\\u0000 is not NUL"}
