"""Console page timings at scale: the server time of each /ui page over BENCH_ROWS actions.

Creates a fresh PostgreSQL database (`actionlog_console_bench`, dropped at the end), loads
BENCH_ROWS actions with COPY (bench/load.py's generator; the big tenant's rows also get a
session id per 25 actions and a correlation id per 10), rebuilds the rollups, runs
`actionlog serve`, signs in to the console with the big tenant's key, and requests each page
BENCH_REPEAT times one after the other. It reports the service's own time (the
`Server-Timing: app;dur=…` header: from the request's arrival to the response's first byte,
rendering included) and the client's, as p50/p95/max, in bench/CONSOLE.md.

    BENCH_ROWS=1000000 .venv/bin/python bench/console.py
"""

import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).parent))
import load

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "30"))
SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = "actionlog_console_bench"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PORT = int(os.environ.get("BENCH_PORT") or _free_port())
BASE = f"http://127.0.0.1:{PORT}"
BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
CHUNK = 100_000
TARGET_MS = 100.0


def dsn() -> str:
    return SERVER.rsplit("/", 1)[0] + "/" + DB_NAME


def env() -> dict[str, str]:
    url = dsn().replace("postgresql://", "postgresql+asyncpg://", 1)
    return {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "warning"}


def actionlog(*args: str) -> str:
    done = subprocess.run(
        [str(BIN / "actionlog"), *args], env=env(), capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"actionlog {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


async def sql(target: str, statement: str) -> None:
    connection = await asyncpg.connect(target)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _tagged(row: tuple[Any, ...], n: int, big: UUID) -> tuple[Any, ...]:
    if row[1] != big:
        return row
    values = list(row)
    values[8] = f"sess-{n // 50:06d}"  # the big tenant holds every other row: 25 per session
    values[9] = f"corr-{n // 20:07d}"
    return tuple(values)


async def prepare() -> tuple[str, float]:
    await sql(SERVER, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    await sql(SERVER, f"CREATE DATABASE {DB_NAME}")
    actionlog("migrate")
    tenants = [
        json.loads(actionlog("tenant", "create", f"Console {i}", "--json")) for i in range(10)
    ]
    ids = [UUID(t["id"]) for t in tenants]
    started = time.perf_counter()
    chunk: list[tuple[Any, ...]] = []
    for n, row in enumerate(load.generate_rows(ids, ROWS)):
        chunk.append(_tagged(row, n, ids[0]))
        if len(chunk) == CHUNK:
            await load.copy_rows(dsn(), chunk)
            chunk = []
    if chunk:
        await load.copy_rows(dsn(), chunk)
    print(f"loaded {ROWS:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
    actionlog("rollups", "rebuild")
    await sql(dsn(), "VACUUM ANALYZE")
    return tenants[0]["api_key"], time.perf_counter() - started


def start() -> subprocess.Popen[bytes]:
    process = subprocess.Popen([str(BIN / "actionlog"), "serve", "--port", str(PORT)], env=env())
    for _ in range(200):
        try:
            if httpx.get(f"{BASE}/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not become ready")


def pages(client: httpx.Client) -> list[tuple[str, str]]:
    listing = client.get("/ui/actions")
    first_id = re.search(r'href="/ui/actions/([0-9a-f-]{36})"', listing.text)
    more = re.search(r'data-more="([^"]+)"', listing.text)
    assert first_id and more, "the actions page shows no rows"
    detail = client.get(f"/ui/actions/{first_id.group(1)}").text
    session = re.search(r'href="/ui/sessions/([^"]+)"', detail)
    return [
        ("actions, newest 50", "/ui/actions"),
        ("actions, load more (page 2 rows)", more.group(1).replace("&amp;", "&")),
        ("actions, status=failure", "/ui/actions?status=failure"),
        ("actions, provider + type", "/ui/actions?provider_name=hubspot&action_type=crm_update"),
        ("actions, text search", "/ui/actions?q=rate+limit"),
        ("actions, min duration 5 s", "/ui/actions?min_duration_ms=5000"),
        ("action detail + timeline", f"/ui/actions/{first_id.group(1)}"),
        ("failed, last 24 h", "/ui/failed"),
        ("failed, last 7 days", "/ui/failed?range=7d"),
        ("statistics, last 24 h", "/ui/stats"),
        ("statistics, last 30 days", "/ui/stats?range=30d"),
        ("statistics, 7 days, hubspot", "/ui/stats?range=7d&provider_name=hubspot"),
        (
            "session report (25 actions)",
            f"/ui/sessions/{session.group(1)}" if session else "/ui/sessions/sess-000001",
        ),
        ("audit list", "/ui/audits"),
    ]


def measure(client: httpx.Client, path: str) -> dict[str, float]:
    server, wall = [], []
    for _ in range(REPEAT):
        started = time.perf_counter()
        response = client.get(path)
        wall.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        timing = re.search(r"app;dur=([\d.]+)", response.headers["server-timing"])
        server.append(float(timing.group(1)) if timing else float("nan"))

    def p(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]

    return {
        "p50": statistics.median(server), "p95": p(server, 95), "max": max(server),
        "client_p50": statistics.median(wall), "bytes": len(response.content),
    }  # fmt: skip


def report(results: list[tuple[str, str, dict[str, float]]], load_s: float) -> str:
    lines = [
        "# Console page timings",
        "",
        f"{ROWS:,} actions on PostgreSQL 15 (the big tenant holds half), `actionlog serve` with",
        f"one worker, {REPEAT} sequential requests per page after one warm-up, signed in with the",
        "big tenant's key. Server time is `Server-Timing: app;dur` (request in → first byte out,",
        f"rendering included); target: under {TARGET_MS:.0f} ms.",
        f"Loading took {load_s:.0f} s (COPY, rollups, VACUUM).",
        "",
        "| page | server p50 ms | server p95 ms | server max ms | client p50 ms | KiB | < 100 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for name, path, r in results:
        ok = "yes" if r["p95"] < TARGET_MS else "**no**"
        shown = path.split("?")[0] + "?…cursor" if "cursor" in path else path
        figures = f"{r['p50']:.1f} | {r['p95']:.1f} | {r['max']:.1f} | {r['client_p50']:.1f}"
        lines.append(f"| {name} (`{shown}`) | {figures} | {r['bytes'] / 1024:.0f} | {ok} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    key, load_s = asyncio.run(prepare())
    server = start()
    try:
        with httpx.Client(base_url=BASE, timeout=60) as client:
            response = client.post("/ui/sign-in", data={"api_key": key}, headers={"Origin": BASE})
            assert response.status_code == 303, response.text
            results = []
            for name, path in pages(client):
                client.get(path)  # warm-up: caches, prepared statements
                results.append((name, path, measure(client, path)))
                print(f"{name}: p50 {results[-1][2]['p50']:.1f} ms", flush=True)
        (HERE / "CONSOLE.md").write_text(report(results, load_s))
        print((HERE / "CONSOLE.md").read_text())
    finally:
        server.terminate()
        server.wait(timeout=10)
        asyncio.run(sql(SERVER, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))


if __name__ == "__main__":
    main()
