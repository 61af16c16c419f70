"""GET /metrics: request counts and latency by route template, recorded rows, group commits,
pool use; no tenant ids; the token; and correct sums across several worker processes."""

import asyncio
import glob
import os
import re
import sys
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from tests.conftest import ADMIN_TOKEN, TenantHandle
from tests.hardening.conftest import asgi_client, free_port, serving

ACTIONS = "/api/v1/logs/actions"


def _value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        metric, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in metric for k, v in labels.items()):
            total += float(value)
    return total


async def test_metrics_count_requests_by_route_template(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    before = (await client.get("/metrics")).text
    created = await client.post(ACTIONS, json={"action_type": "m"}, headers=tenant.headers)
    await client.get(f"{ACTIONS}/{created.json()['id']}", headers=tenant.headers)
    await client.post(
        "/api/v1/logs/audits",
        json={"action": "create", "resource_type": "c", "resource_id": "1"},
        headers=tenant.headers,
    )
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    one = {"method": "GET", "route": f"{ACTIONS}/{{action_id}}", "status": "200"}
    assert _value(after, "actionlog_http_requests_total", **one) == (
        _value(before, "actionlog_http_requests_total", **one) + 1
    )
    posted = {"method": "POST", "route": ACTIONS, "status": "201"}
    assert _value(after, "actionlog_http_requests_total", **posted) >= 1
    assert _value(after, "actionlog_http_request_duration_seconds_count", method="GET") >= 1
    assert (
        _value(after, "actionlog_actions_recorded_total")
        >= _value(before, "actionlog_actions_recorded_total") + 1
    )
    assert _value(after, "actionlog_audits_recorded_total") >= 1
    assert "actionlog_db_pool_connections_in_use" in after
    assert tenant.id not in after
    assert created.json()["id"] not in after


async def test_unknown_paths_share_one_label(client: httpx.AsyncClient) -> None:
    await client.get("/no/such/path/12345")
    text = (await client.get("/metrics")).text
    assert "/no/such/path" not in text
    assert 'route="<unmatched>"' in text


async def test_the_metrics_token(settings: Settings) -> None:
    guarded = Settings(**{**settings.model_dump(), "metrics_token": "scrape-token-123"})
    async with serving(guarded) as app, asgi_client(app) as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await client.get("/metrics", headers=wrong)).status_code == 401
        right = {"Authorization": "Bearer scrape-token-123"}
        assert (await client.get("/metrics", headers=right)).status_code == 200


async def test_metrics_can_be_turned_off(settings: Settings) -> None:
    off = settings.model_copy(update={"metrics_enabled": False})
    async with serving(off) as app, asgi_client(app) as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_several_workers_add_up(
    settings: Settings,
    backend: str,
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    tmp_path: Path,
) -> None:
    if backend != "postgresql":
        pytest.skip("several workers need PostgreSQL")
    port = free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        "DATABASE_URL": settings.database_url,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "LOG_LEVEL": "warning",
        "TMPDIR": str(tmp_path),  # where serve makes the workers' metrics directory
    }
    cli = Path(sys.executable).with_name("actionlog")
    server = await asyncio.create_subprocess_exec(
        str(cli),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
        env=environment,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(900):  # up to ~90 s on a busy machine
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            sent = 40
            for i in range(sent):
                # a new connection each time, so that both workers serve some
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as one:
                    response = await one.post(
                        ACTIONS, json={"action_type": f"w{i}"}, headers=tenant.headers
                    )
                    assert response.status_code == 201
            scrapes = []
            for _ in range(4):
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as one:
                    scrapes.append((await one.get("/metrics")).text)
        assert len(glob.glob(f"{tmp_path}/actionlog-metrics-*")) == 1
    finally:
        server.terminate()
        await server.wait()
    assert not glob.glob(f"{tmp_path}/actionlog-metrics-*"), "serve removes what it made"
    posted = {"method": "POST", "route": ACTIONS, "status": "201"}
    for text in scrapes:  # whichever worker answers, the sum over both
        assert _value(text, "actionlog_http_requests_total", **posted) == sent
        assert _value(text, "actionlog_actions_recorded_total") == sent
        assert re.search(r"actionlog_group_commit_rows_count\S* \d", text)
