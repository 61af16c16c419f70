"""The benchmark: ingest and query figures of the service beside this machine's limits.

Creates a fresh PostgreSQL database, loads BENCH_ROWS actions with COPY, starts
`actionlog serve --workers 2` as a user would, drives it with wrk from another process, and
writes bench/RESULTS.md. Every figure is the median of BENCH_RUNS rounds.
"""

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).parent))
import load
import report
import wrk

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = "actionlog_bench"
PORT = int(os.environ.get("BENCH_PORT", "8765"))
BASE = f"http://127.0.0.1:{PORT}"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
ACTIONS = "/api/v1/logs/actions"
DEEP_PAGE = min(1000, ROWS // 2 // 100 - 1)  # page 1,000 of the big tenant at 1M rows


def database_dsn() -> str:
    return SERVER.rsplit("/", 1)[0] + "/" + DB_NAME


def service_env() -> dict[str, str]:
    url = database_dsn().replace("postgresql://", "postgresql+asyncpg://", 1)
    return {**os.environ, "DATABASE_URL": url, "ADMIN_TOKEN": ADMIN_TOKEN, "LOG_LEVEL": "warning"}


def actionlog(*args: str) -> str:
    done = subprocess.run(
        [str(BIN / "actionlog"), *args], env=service_env(), capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"actionlog {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


async def admin_sql(sql: str) -> None:
    connection = await asyncpg.connect(SERVER)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def prepare() -> tuple[list[dict[str, Any]], float]:
    """A fresh database with 10 tenants and ROWS actions; returns tenants and load rows/s."""
    await admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    await admin_sql(f"CREATE DATABASE {DB_NAME}")
    actionlog("migrate")
    tenants = [json.loads(actionlog("tenant", "create", f"Bench {i}", "--json")) for i in range(10)]
    print(f"generating {ROWS:,} rows ...", flush=True)
    rows = list(load.generate_rows([UUID(t["id"]) for t in tenants], ROWS))
    rate = await load.copy_rows(database_dsn(), rows, connections=2)
    print(f"loaded {ROWS:,} rows at {rate:,.0f} rows/s", flush=True)
    del rows
    actionlog("rollups", "rebuild")
    connection = await asyncpg.connect(database_dsn())
    try:
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return tenants, rate


def start_server() -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [str(BIN / "actionlog"), "serve", "--workers", "2", "--port", str(PORT)],
        env=service_env(),
    )
    for _ in range(200):
        try:
            if httpx.get(f"{BASE}/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not become ready")


def worker_pids(master: int) -> list[int]:
    """The serving processes (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]  # fmt: skip


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cursor_of_page(key: str, page: int) -> str:
    """Walk `page - 1` pages of 100 from the newest and return the cursor of the next."""
    cursor = ""
    with httpx.Client(base_url=BASE, headers={"X-API-Key": key}, timeout=30) as client:
        for _ in range(page - 1):
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            cursor = client.get("/api/v1/logs/actions", params=params).headers["x-next-cursor"]
    return cursor


def export_csv(key: str, master: int) -> dict[str, float]:
    """Stream the big tenant's CSV export, sampling the workers' RSS meanwhile."""
    pids = worker_pids(master)
    baseline = {pid: rss_mb(pid) for pid in pids}
    peak = dict(baseline)
    rows = 0
    started = time.perf_counter()
    with (
        httpx.Client(base_url=BASE, headers={"X-API-Key": key}, timeout=600) as client,
        client.stream("GET", "/api/v1/logs/actions/export", params={"format": "csv"}) as response,
    ):
        last_sample = 0.0
        for chunk in response.iter_bytes():
            rows += chunk.count(b"\n")
            now = time.perf_counter()
            if now - last_sample > 0.05:
                last_sample = now
                for pid in pids:
                    peak[pid] = max(peak[pid], rss_mb(pid))
    elapsed = time.perf_counter() - started
    growth = max(peak[pid] - baseline[pid] for pid in pids)
    rate = (rows - 1) / elapsed
    return {"rows": rows - 1, "seconds": elapsed, "rows_per_s": rate, "rss_mb": growth}


def one_round(tenants: list[dict[str, Any]], master: int, page_1000: str) -> dict[str, float]:
    big, other = tenants[0]["api_key"], tenants[1]["api_key"]
    now = datetime.now(UTC)
    since_24h = (now - timedelta(hours=24)).isoformat().replace("+00:00", "Z")
    since_30d = (now - timedelta(days=30)).isoformat().replace("+00:00", "Z")
    figures: dict[str, float] = {}

    def get(name: str, path: str, connections: int = 4) -> None:
        result = wrk.run(BASE, "get.lua", key=big, path=path, connections=connections,
                         seconds=SECONDS, threads=1)  # fmt: skip
        figures[f"{name}_rps"] = result.requests_per_s
        figures[f"{name}_p50_ms"] = result.p50_ms
        figures[f"{name}_p99_ms"] = result.p99_ms
        figures[f"{name}_server_p50_ms"] = result.server_p50_ms or float("nan")
        figures[f"{name}_server_p99_ms"] = result.server_p99_ms or float("nan")

    noop = wrk.run(BASE, "get.lua", path="/health", connections=64, seconds=SECONDS)
    figures["noop_rps"] = noop.requests_per_s
    probe = list(load.generate_rows([UUID(tenants[9]["id"])], 100_000, seed=int(time.time())))
    figures["copy_1conn_rows_s"] = asyncio.run(load.copy_rows(database_dsn(), probe[:50_000], 1))
    figures["copy_2conn_rows_s"] = asyncio.run(load.copy_rows(database_dsn(), probe[50_000:], 2))

    single = wrk.run(BASE, "post_one.lua", key=other, path=ACTIONS, connections=64, seconds=SECONDS)
    figures.update(single_ev_s=single.requests_per_s, single_p50_ms=single.p50_ms,
                   single_p99_ms=single.p99_ms)  # fmt: skip
    batch = wrk.run(
        BASE, "post_batch.lua", key=other, path=f"{ACTIONS}/batch", connections=16, seconds=SECONDS
    )
    figures["batch_ev_s"] = batch.requests_per_s * 100

    get("newest_failed", "/api/v1/logs/actions?status=failure&limit=100")
    get("page_1", "/api/v1/logs/actions?limit=100")
    get("page_1000", f"/api/v1/logs/actions?limit=100&cursor={page_1000}")
    get("failed_recent", "/api/v1/logs/actions/failed/recent?minutes=1440&limit=100")
    get("stats_all", "/api/v1/logs/stats")
    get("stats_24h", f"/api/v1/logs/stats?since={since_24h}")
    get("timeseries_30d", f"/api/v1/logs/stats/timeseries?interval=hour&since={since_30d}")

    export = export_csv(big, master)
    figures.update(export_rows=export["rows"], export_rows_s=export["rows_per_s"],
                   export_rss_mb=export["rss_mb"])  # fmt: skip
    audit = wrk.run(
        BASE, "post_audit.lua", key=other, path="/api/v1/logs/audits", connections=64,
        seconds=SECONDS,
    )  # fmt: skip
    figures["audit_ev_s"] = audit.requests_per_s
    return figures


def machine() -> str:
    pg = subprocess.run(["psql", SERVER, "-tAc", "SHOW server_version"], capture_output=True,
                        text=True).stdout.strip()  # fmt: skip
    return (f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, "
            f"Python {platform.python_version()}, PostgreSQL {pg}")  # fmt: skip


def main() -> None:
    tenants, load_rate = asyncio.run(prepare())
    server = start_server()
    try:
        page_1000 = cursor_of_page(tenants[0]["api_key"], DEEP_PAGE)
        rounds = []
        for n in range(1, RUNS + 1):
            print(f"round {n}/{RUNS} ...", flush=True)
            rounds.append(one_round(tenants, server.pid, page_1000))
    finally:
        server.terminate()
        server.wait(timeout=30)
    medians = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
    medians["initial_load_rows_s"] = load_rate
    medians["deep_page"] = DEEP_PAGE
    text = report.render(medians, machine(), ROWS, RUNS, SECONDS)
    (HERE / "RESULTS.md").write_text(text)
    print(text)
    asyncio.run(admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))


if __name__ == "__main__":
    main()
