"""Read routes on a real streaming replica (`DATABASE_READ_URL`), writes on the primary.

The test tooling starts a private primary and a replica made from it with `pg_basebackup -R`,
each on its own port, and stops both at the end (tests/pgcluster.py). Pausing the replica's
replay shows where each route reads: a row written meanwhile is committed on the primary and
invisible to the list, the record and the statistics until replay resumes. That is the
read-your-writes trade-off of a replica (docs/scaling.md, "Read replicas").
"""

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.core import migrations
from app.core.config import Settings
from app.core.db import create_engine
from app.main import create_app
from tests import pgcluster
from tests.conftest import ADMIN, ADMIN_TOKEN, TenantHandle, create_tenant

ACTIONS = "/api/v1/logs/actions"


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _sql(url: str, statement: str) -> Any:
    connection = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        return await connection.fetchval(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
async def replicated() -> AsyncIterator[tuple[str, str]]:
    """(primary URL, replica URL) of a migrated `actionlog` database streamed to a replica."""
    reason = pgcluster.available()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    root = pgcluster.cluster_root()
    primary = pgcluster.Cluster(root, "primary")
    replica = pgcluster.Cluster(root, "replica")
    try:
        await asyncio.to_thread(primary.init)
        await asyncio.to_thread(primary.start)
        await _sql(primary.url, "CREATE DATABASE actionlog")
        primary_url = primary.url.rsplit("/", 1)[0] + "/actionlog"
        engine = create_engine(Settings(database_url=primary_url), as_owner=True)
        await migrations.upgrade(engine)
        await engine.dispose()
        await asyncio.to_thread(replica.replicate, primary)
        await asyncio.to_thread(replica.start)
        yield primary_url, replica.url.rsplit("/", 1)[0] + "/actionlog"
    finally:
        for cluster in (replica, primary):
            with contextlib.suppress(RuntimeError):
                await asyncio.to_thread(cluster.stop)
        shutil.rmtree(Path(root), ignore_errors=True)


@pytest.fixture(scope="module")
async def replica_client(replicated: tuple[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    primary_url, replica_url = replicated
    settings = Settings(
        database_url=primary_url,
        database_read_url=replica_url,
        admin_token=ADMIN_TOKEN,
        environment="test",
        log_level="warning",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def _replayed(client: httpx.AsyncClient, tenant: TenantHandle, action_id: str) -> None:
    """Wait (up to 20 s) until the replica serves the action."""
    for _ in range(200):
        if (await client.get(f"{ACTIONS}/{action_id}", headers=tenant.headers)).status_code == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"action {action_id} never reached the replica")


async def test_the_replica_is_a_streaming_standby(replicated: tuple[str, str]) -> None:
    primary_url, replica_url = replicated
    assert await _sql(replica_url, "SELECT pg_is_in_recovery()") is True
    assert await _sql(primary_url, "SELECT count(*) FROM pg_stat_replication") == 1


async def test_reads_come_from_the_replica_and_writes_go_to_the_primary(
    replicated: tuple[str, str], replica_client: httpx.AsyncClient
) -> None:
    primary_url, replica_url = replicated
    client = replica_client
    tenant = await create_tenant(client, "Replica tenant")
    first = await client.post(ACTIONS, json={"action_type": "seen"}, headers=tenant.headers)
    assert first.status_code == 201, first.text
    await _replayed(client, tenant, first.json()["id"])

    await _sql(replica_url, "SELECT pg_wal_replay_pause()")
    try:
        second = await client.post(ACTIONS, json={"action_type": "lagging"}, headers=tenant.headers)
        assert second.status_code == 201, second.text  # committed on the primary
        lagging = second.json()["id"]
        on_primary = await _sql(
            primary_url, f"SELECT count(*) FROM action_logs WHERE id = '{lagging}'"
        )
        assert on_primary == 1
        assert (await client.get(f"{ACTIONS}/{lagging}", headers=tenant.headers)).status_code == 404
        listed = await client.get(ACTIONS, headers=tenant.headers)
        assert [row["action_type"] for row in listed.json()] == ["seen"]
        stats = await client.get("/api/v1/logs/stats", headers=tenant.headers)
        assert stats.json()["total_actions"] == 1
    finally:
        await _sql(replica_url, "SELECT pg_wal_replay_resume()")
    await _replayed(client, tenant, lagging)
    listed = await client.get(ACTIONS, headers=tenant.headers)
    assert [row["action_type"] for row in listed.json()] == ["lagging", "seen"]


async def test_tenant_isolation_holds_on_the_replica(
    replica_client: httpx.AsyncClient,
) -> None:
    client = replica_client
    mine = await create_tenant(client, "Mine")
    theirs = await create_tenant(client, "Theirs")
    created = await client.post(ACTIONS, json={"action_type": "private"}, headers=mine.headers)
    await _replayed(client, mine, created.json()["id"])
    other = await client.get(f"{ACTIONS}/{created.json()['id']}", headers=theirs.headers)
    assert other.status_code == 404
    assert (await client.get(ACTIONS, headers=theirs.headers)).json() == []


async def test_key_checks_stay_on_the_primary(
    replicated: tuple[str, str], replica_client: httpx.AsyncClient
) -> None:
    # A key revoked on the primary fails at once, even while the replica has not replayed it.
    client = replica_client
    tenant = await create_tenant(client, "Revoked")
    assert (await client.get(ACTIONS, headers=tenant.headers)).status_code == 200
    await _sql(replicated[1], "SELECT pg_wal_replay_pause()")
    try:
        response = await client.delete(
            f"/api/v1/admin/tenants/{tenant.id}/keys/{tenant.key_id}", headers=ADMIN
        )
        assert response.status_code in (200, 204), response.text
        assert (await client.get(ACTIONS, headers=tenant.headers)).status_code == 401
    finally:
        await _sql(replicated[1], "SELECT pg_wal_replay_resume()")
