"""Tenant offboarding: keys revoked at once, every row deleted in bounded batches, the other
tenants untouched, recorded in the operator's log, idempotent; over HTTP and the CLI."""

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.offboarding import service as offboarding
from tests.conftest import ADMIN, ADMIN_TOKEN, TenantHandle, create_key, create_tenant

TENANTS = "/api/v1/admin/tenants"
ACTIONS = "/api/v1/logs/actions"
TABLES = ("action_logs", "audit_logs", "api_keys", "idempotency_keys", "action_rollups", "tenants")


async def _fill(client: httpx.AsyncClient, tenant: TenantHandle, actions: int = 7) -> None:
    batch = [{"action_type": f"t{i % 3}", "status": "failed"} for i in range(actions)]
    assert (
        await client.post(f"{ACTIONS}/batch", json=batch, headers=tenant.headers)
    ).status_code == 201
    keyed = {**tenant.headers, "Idempotency-Key": "off-1"}
    assert (await client.post(ACTIONS, json={"action_type": "k"}, headers=keyed)).status_code == 201
    for i in range(3):
        audit = {"action": "create", "resource_type": "c", "resource_id": str(i)}
        response = await client.post("/api/v1/logs/audits", json=audit, headers=tenant.headers)
        assert response.status_code == 201


async def _rows(engine: AsyncEngine, tenant_id: str) -> dict[str, int]:
    value = tenant_id if engine.dialect.name == "postgresql" else tenant_id.replace("-", "")
    counts = {}
    async with engine.connect() as connection:
        for table in TABLES:
            column = "id" if table == "tenants" else "tenant_id"
            counts[table] = (
                await connection.execute(
                    text(f"SELECT count(*) FROM {table} WHERE {column} = :t"), {"t": value}
                )
            ).scalar_one()
    return counts


async def test_offboarding_deletes_everything_of_one_tenant(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(offboarding, "BATCH", 3)  # several batches per table
    second_key = {"X-API-Key": await create_key(client, tenant, ["read"])}
    await _fill(client, tenant)
    await _fill(client, other_tenant)
    before_other = await _rows(engine, other_tenant.id)
    logger = logging.getLogger("actionlog.operator")
    logger.addHandler(caplog.handler)
    try:
        response = await client.delete(f"{TENANTS}/{tenant.slug}", headers=ADMIN)
    finally:
        logger.removeHandler(caplog.handler)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "tenant_id": tenant.id,
        "keys_revoked": 2,
        "actions_deleted": 8,
        "audits_deleted": 6,  # three recorded; the creation of the tenant and its two keys
    }
    assert await _rows(engine, tenant.id) == dict.fromkeys(TABLES, 0)
    assert await _rows(engine, other_tenant.id) == before_other
    for headers in (tenant.headers, second_key):
        assert (await client.get(ACTIONS, headers=headers)).status_code == 401
    assert (await client.get(ACTIONS, headers=other_tenant.headers)).status_code == 200
    assert (await client.get(f"{TENANTS}/{tenant.id}", headers=ADMIN)).status_code == 404
    logged = [r.getMessage() for r in caplog.records if r.name == "actionlog.operator"]
    assert any(f"offboarding tenant {tenant.id} by admin: 2 keys revoked" in m for m in logged)
    assert any("8 actions and 6 audit rows deleted" in m for m in logged)


async def test_offboarding_again_is_a_404_and_changes_nothing(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    assert (await client.delete(f"{TENANTS}/{tenant.id}", headers=ADMIN)).status_code == 200
    again = await client.delete(f"{TENANTS}/{tenant.id}", headers=ADMIN)
    assert again.status_code == 404
    assert "already offboarded" in again.json()["detail"]


async def test_offboarding_needs_the_admin_token(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    assert (await client.delete(f"{TENANTS}/{tenant.id}")).status_code == 401
    assert (
        await client.delete(f"{TENANTS}/{tenant.id}", headers=tenant.headers)
    ).status_code == 401
    assert (await client.get(ACTIONS, headers=tenant.headers)).status_code == 200


async def test_the_cli_offboards_by_slug(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    tenant = await create_tenant(client, "Leaving Soon")
    await _fill(client, tenant, actions=2)
    environment = {**os.environ, "DATABASE_URL": settings.database_url, "ADMIN_TOKEN": ADMIN_TOKEN}
    cli = Path(sys.executable).with_name("actionlog")
    done = await asyncio.to_thread(
        subprocess.run,
        [str(cli), "tenant", "delete", tenant.slug],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1 keys revoked, 3 actions and 5 audit rows deleted" in done.stdout
    assert await _rows(engine, tenant.id) == dict.fromkeys(TABLES, 0)
    missing = await asyncio.to_thread(
        subprocess.run,
        [str(cli), "tenant", "delete", tenant.slug],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing.returncode == 1


def _unused(*_: Any) -> None: ...
