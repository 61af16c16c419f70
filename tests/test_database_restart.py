"""After PostgreSQL restarts, the first requests are served: no pooled or kept connection that
died with the server is used again.

The test tooling starts a private PostgreSQL (tests/pgcluster.py), the service warms its pool
and its kept connections (group commits, audit appends, key lookups) with concurrent requests,
then the server is restarted; once it accepts connections again, a burst of every kind of
request must succeed, where a stale connection would answer 503 "connection is closed".
SQLite has no server to restart: this is PostgreSQL's test.
"""

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.core import migrations
from app.core.config import Settings
from app.core.db import create_engine
from app.main import create_app
from tests import pgcluster
from tests.conftest import ADMIN, ADMIN_TOKEN, TenantHandle, create_tenant
from tests.test_replica import _sql

ACTIONS = "/api/v1/logs/actions"
AUDITS = "/api/v1/logs/audits"
CONCURRENT = 12


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[tuple[pgcluster.Cluster, str]]:
    """A private server with a migrated `actionlog` database, and that database's URL."""
    reason = pgcluster.available()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    root = pgcluster.cluster_root()
    server = pgcluster.Cluster(root, "restarted")
    try:
        await asyncio.to_thread(server.init)
        await asyncio.to_thread(server.start)
        await _sql(server.url, "CREATE DATABASE actionlog")
        url = server.url.rsplit("/", 1)[0] + "/actionlog"
        engine = create_engine(Settings(database_url=url), as_owner=True)
        await migrations.upgrade(engine)
        await engine.dispose()
        yield server, url
    finally:
        with contextlib.suppress(RuntimeError):
            await asyncio.to_thread(server.stop)
        shutil.rmtree(Path(root), ignore_errors=True)


@pytest.fixture(scope="module")
async def served(cluster: tuple[pgcluster.Cluster, str]) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=cluster[1],
        admin_token=ADMIN_TOKEN,
        environment="test",
        log_level="warning",
        failed_auth_per_minute=0,
        alerts_enabled=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def _every_kind(client: httpx.AsyncClient, tenant: TenantHandle, n: int) -> list[int]:
    """`n` of each: lane writes (group commit), keyed writes, audit appends, reads, admin."""
    audit = {"action": "update", "resource_type": "r", "resource_id": "1", "before": {"a": 1}}
    requests = []
    for i in range(n):
        keyed = {**tenant.headers, "Idempotency-Key": f"restart-{os.urandom(6).hex()}"}
        requests += [
            client.post(ACTIONS, json={"action_type": "lane"}, headers=tenant.headers),
            client.post(ACTIONS, json={"action_type": "keyed"}, headers=keyed),
            client.post(AUDITS, json={**audit, "after": {"a": i + 2}}, headers=tenant.headers),
            client.get(ACTIONS, headers=tenant.headers),
            client.get("/api/v1/logs/stats", headers=tenant.headers),
            client.get(f"/api/v1/admin/tenants/{tenant.id}", headers=ADMIN),
        ]
    return [response.status_code for response in await asyncio.gather(*requests)]


async def test_the_first_requests_after_a_restart_are_served(
    cluster: tuple[pgcluster.Cluster, str], served: httpx.AsyncClient
) -> None:
    server, _ = cluster
    tenant = await create_tenant(served, "Restart")
    warm = await _every_kind(served, tenant, CONCURRENT)
    assert all(status < 300 for status in warm), warm

    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(server.start)  # returns once the server accepts connections

    after = await _every_kind(served, tenant, CONCURRENT)
    assert [s for s in after if s >= 300] == [], after
    listed = await served.get(ACTIONS, params={"limit": 1000}, headers=tenant.headers)
    assert len(listed.json()) == 4 * CONCURRENT
