"""The cost of issue 14's additions on the hot path: single-event ingest (POST one action)
with metrics, rate limiting (in process and in Redis), and PostgreSQL as a plain owner role.

Each variant serves the app with one uvicorn worker on PostgreSQL (a fresh database, migrated)
and sends `REQUESTS` single-event POSTs from `CONCURRENCY` connections; the figure is the
requests per second the client saw, and the median of the service's own Server-Timing.
Run: .venv/bin/python bench/hardening.py   (figures: bench/RESULTS.md, "Hardening")
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
}


async def _database() -> str:
    name = f"bench_hardening_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(SERVER)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def _run(url: str, extra: dict[str, Any]) -> tuple[float, float]:
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
    timings: list[float] = []

    async def worker(count: int) -> None:
        async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}) as client:
            for _ in range(count):
                response = await client.post("/api/v1/logs/actions", json={"action_type": "b"})
                assert response.status_code == 201, response.text
                timings.append(float(response.headers["server-timing"].split("=")[1]))

    started = time.perf_counter()
    await asyncio.gather(*(worker(REQUESTS // CONCURRENCY) for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    server.should_exit = True
    await task
    return len(timings) / elapsed, statistics.median(timings)


async def main() -> None:
    url = await _database()
    engine = create_engine(Settings(database_url=url), url)
    await migrations.upgrade(engine)
    await engine.dispose()
    for name, extra in VARIANTS.items():
        rate, median = await _run(url, extra)
        print(f"{name:40s} {rate:8.0f} req/s   service median {median:.2f} ms", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
