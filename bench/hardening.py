"""The cost of the hardening additions on the hot paths: single-event ingest (POST one
action) with metrics, rate limiting (in process and in Redis), and row-level security on and
off; and a list page (GET the newest 50 actions) with row-level security on and off.

Each variant serves the app with one uvicorn worker on PostgreSQL (a fresh database, migrated)
and sends `REQUESTS` single-event POSTs from `CONCURRENCY` connections, then as many GETs of
the list; the figures are the requests per second the client saw, and the median of the
service's own Server-Timing. Row-level security off is `DATABASE_ROLE=` (empty): the service
stays the login role (the superuser here), which the policies do not hold; every other variant
runs as `actionlog_app`, as the service does by default.
Run: .venv/bin/python bench/hardening.py   (BENCH_VARIANTS=rls: only the two RLS variants)
"""

import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core import migrations  # noqa: E402
from app.core.config import Settings  # noqa: E402
from app.core.db import create_engine  # noqa: E402
from app.main import create_app  # noqa: E402

SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "3000"))
CONCURRENCY = 16
ADMIN = "bench-admin-token-0123456789"
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline (metrics off, no limits)": {"metrics_enabled": False},
    "metrics on": {"metrics_enabled": True},
    "rate limit, in process": {"metrics_enabled": False, "rate_limit_per_minute": 10**9},
    "rate limit, Redis": {
        "metrics_enabled": False,
        "rate_limit_per_minute": 10**9,
        "redis_url": "redis://127.0.0.1:6379/0",
    },
    "all on (metrics, Redis limits)": {
        "rate_limit_per_minute": 10**9,
        "redis_url": "redis://127.0.0.1:6379/0",
    },
    "row-level security off (DATABASE_ROLE=)": {"metrics_enabled": False, "database_role": ""},
    "row-level security on (actionlog_app)": {
        "metrics_enabled": False,
        "database_role": "actionlog_app",
    },
}
if os.environ.get("BENCH_VARIANTS") == "rls":
    VARIANTS = {name: extra for name, extra in VARIANTS.items() if "row-level" in name}


async def _database() -> str:
    name = f"bench_hardening_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(SERVER)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return SERVER.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0] + "/" + name


async def _run(url: str, extra: dict[str, Any]) -> tuple[tuple[float, float], tuple[float, float]]:
    import uvicorn

    settings = Settings(
        database_url=url, admin_token=ADMIN, log_level="warning", failed_auth_per_minute=0, **extra
    )
    app = create_app(settings)
    port = 18000 + uuid.uuid4().int % 1000
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as admin:
        created = await admin.post(
            "/api/v1/admin/tenants", json={"name": "bench"}, headers={"X-Admin-Token": ADMIN}
        )
        key = created.json()["api_key"]
    ingest = await _drive(base, key, lambda client: client.post(ACTIONS, json={"action_type": "b"}))
    listing = await _drive(base, key, lambda client: client.get(ACTIONS, params={"limit": 50}))
    server.should_exit = True
    await task
    return ingest, listing


ACTIONS = "/api/v1/logs/actions"


async def _drive(base: str, key: str, send: Any) -> tuple[float, float]:
    """`REQUESTS` requests made by `send(client)` from `CONCURRENCY` clients: the requests per
    second and the median of the service's own time."""
    timings: list[float] = []

    async def worker(count: int) -> None:
        async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}) as client:
            for _ in range(count):
                response = await send(client)
                assert response.status_code in (200, 201), response.text
                timings.append(float(response.headers["server-timing"].split("=")[1]))

    started = time.perf_counter()
    await asyncio.gather(*(worker(REQUESTS // CONCURRENCY) for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    return len(timings) / elapsed, statistics.median(timings)


async def main() -> None:
    url = await _database()
    engine = create_engine(Settings(database_url=url), url, as_owner=True)
    await migrations.upgrade(engine)
    await engine.dispose()
    for name, extra in VARIANTS.items():
        (rate, median), (list_rate, list_median) = await _run(url, extra)
        print(
            f"{name:42s} POST {rate:6.0f} req/s, service median {median:.2f} ms;"
            f"  list {list_rate:6.0f} req/s, {list_median:.2f} ms",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
