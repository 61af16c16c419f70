"""The Python cost of one request: CPU time of the service's own process per request, without
HTTP sockets, for the no-op route and for single-event ingest.

wrk's figures on a shared machine move with everyone else's load; the CPU time a process spends
per request does not (much). This drives the application in process, as uvicorn would (an ASGI
call per request, 64 concurrent callers), against a fresh PostgreSQL database (`BENCH_PG`'s
server, database `BENCH_DB_NAME`), default settings (row-level security on, metrics on), and
reports `time.process_time()` per request: the whole Python path, lane, validation, row
building, key lookup, group commit and asyncpg included; PostgreSQL's own CPU and the kernel's
socket work of the HTTP connection are not. BENCH_REQUESTS (default 4,000) per figure,
BENCH_RUNS rounds (default 3), the median.

Run: .venv/bin/python bench/request_cpu.py
"""

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).parent))
import ingest

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "4000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CONCURRENCY = 64


def action(n: int) -> bytes:
    """The body of bench/lua/post_one.lua's request number n."""
    types = ["crm_create", "crm_update", "helpdesk_create_ticket", "s3_export", "job_execution"]
    providers = ["hubspot", "hubspot", "zendesk", "s3", "scheduler"]
    i = n % len(types)
    return orjson.dumps(
        {
            "action_type": types[i], "provider_name": providers[i], "service": "BenchService",
            "source": "api", "user_id": f"user{n % 97}@example.com",
            "status": "failure" if n % 20 == 0 else "success", "execution_time_ms": 50 + n % 400,
            "request_payload": {
                "email": f"contact{n}@example.com", "firstname": "Ada", "lastname": "Lovelace",
                "company": "Analytical Engines Ltd", "phone": "+44 20 7946 0000",
                "lifecyclestage": "lead",
                "notes": "Imported from the spring campaign; prefers email contact",
            },
            "response_data": {"id": str(100000 + n),
                              "properties": {"createdate": "2026-11-23T10:00:00Z"}},
        }
    )  # fmt: skip


async def call(app: Any, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # the client stays until the response
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def rate(app: Any, method: str, path: str, headers: dict[str, str], post: bool) -> float:
    """CPU microseconds of this process per request, over REQUESTS requests."""
    counter = iter(range(REQUESTS))
    statuses: list[int] = []

    async def caller() -> None:
        for n in counter:
            body = action(n) if post else b""
            statuses.append(await call(app, method, path, headers, body))

    started = time.process_time()
    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    spent = time.process_time() - started
    wrong = [s for s in statuses if s not in (200, 201)]
    assert not wrong, f"{len(wrong)} requests answered {wrong[0]}"
    return spent / REQUESTS * 1e6


async def measure(write_key: str) -> None:
    os.environ.update(ingest.env())
    from app.core.config import Settings
    from app.main import create_app

    app = create_app(Settings())
    post = {"Content-Type": "application/json", "X-API-Key": write_key}
    noops, singles = [], []
    async with app.router.lifespan_context(app):
        await rate(app, "POST", ingest.ACTIONS, post, True)  # warm up
        for number in range(1, RUNS + 1):
            noops.append(await rate(app, "GET", "/health", {}, False))
            singles.append(await rate(app, "POST", ingest.ACTIONS, post, True))
            print(f"round {number}: no-op {noops[-1]:.0f} µs, single POST {singles[-1]:.0f} µs "
                  f"of CPU per request", flush=True)  # fmt: skip
    noop, single = statistics.median(noops), statistics.median(singles)
    print(f"\nCPU per request (median of {RUNS}): no-op {noop:.0f} µs, single POST "
          f"{single:.0f} µs; single / no-op {single / noop:.2f}x")  # fmt: skip


def main() -> None:
    _read_key, write_key = ingest.prepare()
    try:
        asyncio.run(measure(write_key))
    finally:
        asyncio.run(ingest.sql(f"DROP DATABASE IF EXISTS {ingest.DB_NAME} WITH (FORCE)",
                               ingest.SERVER))  # fmt: skip


if __name__ == "__main__":
    main()
