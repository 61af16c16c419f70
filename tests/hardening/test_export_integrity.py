"""Exports never end silently short: a bad request is refused before the first byte, and an
error after it cuts the download so that the client sees a failure, in both formats."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.actions import export
from tests.conftest import TenantHandle
from tests.hardening.conftest import live

ACTIONS = "/api/v1/logs/actions"
EXPORT = f"{ACTIONS}/export"


async def _record(client: httpx.AsyncClient, tenant: TenantHandle, n: int) -> list[str]:
    ids = []
    for i in range(n):
        response = await client.post(ACTIONS, json={"action_type": f"t{i}"}, headers=tenant.headers)
        ids.append(response.json()["id"])
    return ids


async def _spoil(engine: AsyncEngine, action_id: str) -> None:
    """Make a stored row unreadable behind the service's back (a status it does not know)."""
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE action_logs SET status = 'bogus' WHERE id = :id"),
            {
                "id": action_id
                if engine.dialect.name == "postgresql"
                else action_id.replace("-", "")
            },
        )


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
@pytest.mark.parametrize(
    "params",
    [
        {"since": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"},
        {"min_duration_ms": "-1"},
        {"status": "nope"},
        {"order": "sideways"},
    ],
)
async def test_a_bad_parameter_is_refused_before_the_first_byte(
    client: httpx.AsyncClient, tenant: TenantHandle, fmt: str, params: dict[str, Any]
) -> None:
    response = await client.get(EXPORT, params={"format": fmt, **params}, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
async def test_an_error_in_the_first_chunk_is_an_ordinary_500(
    app: FastAPI,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    tenant: TenantHandle,
    fmt: str,
) -> None:
    (only,) = await _record(client, tenant, 1)
    await _spoil(engine, only)
    async with live(app) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.get(EXPORT, params={"format": fmt}, headers=tenant.headers)
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
async def test_an_error_after_the_first_byte_fails_the_download(
    app: FastAPI,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    tenant: TenantHandle,
    fmt: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(export, "CHUNK_SIZE", 2)
    oldest, *_ = await _record(client, tenant, 5)
    await _spoil(engine, oldest)  # newest first: the oldest row is in the third chunk
    received = b""
    async with live(app) as url, httpx.AsyncClient(base_url=url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            async with http.stream(
                "GET", EXPORT, params={"format": fmt}, headers=tenant.headers
            ) as response:
                assert response.status_code == 200
                async for chunk in response.aiter_bytes():
                    received += chunk
    lines = received.decode().splitlines()
    assert len(lines) == (5 if fmt == "csv" else 4)  # the header and four rows, then the cut


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
async def test_a_whole_export_in_several_chunks_ends_cleanly(
    app: FastAPI,
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    fmt: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(export, "CHUNK_SIZE", 2)
    await _record(client, tenant, 4)  # a multiple of the chunk: the last read is empty
    async with live(app) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.get(EXPORT, params={"format": fmt}, headers=tenant.headers)
    assert response.status_code == 200
    assert len(response.text.splitlines()) == (5 if fmt == "csv" else 4)
