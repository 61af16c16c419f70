"""The benchmark: ingest and query figures of the service beside this machine's limits.

`BENCH_DB=postgresql` (default): a fresh PostgreSQL database, BENCH_ROWS actions loaded with
COPY, `actionlog serve --workers BENCH_WORKERS` (default 2). `BENCH_DB=sqlite`: a fresh SQLite
file, the rows inserted with `sqlite3`, `actionlog serve --workers 1` (the embedded default).
`BENCH_SHAPE=spread|burst` chooses the data (bench/load.py). The service is driven by wrk
from another process; each figure is the median of BENCH_RUNS rounds, written into its own
section of bench/RESULTS.md (other sections are kept).
"""

import asyncio
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
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

DB = os.environ.get("BENCH_DB", "postgresql")
SHAPE = os.environ.get("BENCH_SHAPE", "spread")
ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
BURST_ROWS = int(os.environ.get("BENCH_BURST_ROWS", "250000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
WORKERS = 1 if DB == "sqlite" else int(os.environ.get("BENCH_WORKERS", "2"))
SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = "actionlog_bench"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# A port of its own: a fixed one may be held by another server, which would answer instead.
PORT = int(os.environ.get("BENCH_PORT") or free_port())
REUSE = os.environ.get("BENCH_REUSE") == "1"  # keep a loaded database (SQLite: its path)
BASE = f"http://127.0.0.1:{PORT}"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
ACTIONS = "/api/v1/logs/actions"
AUDITS = "/api/v1/logs/audits"
BIG_ROWS = BURST_ROWS if SHAPE == "burst" else ROWS // 2
DEEP_PAGE = max(2, min(1000, BIG_ROWS // 100 - 1))  # page 1,000 of the big tenant at 1M rows
TIMEOUT = max(60, ROWS // 20_000)  # seconds for the one-off walks and exports


def generate(tenant_ids: list[UUID], count: int, seed: int = 42) -> Any:
    if SHAPE == "burst":
        return load.generate_burst(tenant_ids, count, min(BURST_ROWS, count), seed=seed)
    return load.generate_rows(tenant_ids, count, seed=seed)


class Postgres:
    name = "PostgreSQL"

    def __init__(self) -> None:
        self.dsn = SERVER.rsplit("/", 1)[0] + "/" + DB_NAME
        self.url = self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def sql(self, statement: str, dsn: str | None = None) -> Any:
        connection = await asyncpg.connect(dsn or self.dsn)
        try:
            return await connection.fetch(statement)
        finally:
            await connection.close()

    def create(self) -> None:
        asyncio.run(self.sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)", SERVER))
        asyncio.run(self.sql(f"CREATE DATABASE {DB_NAME}", SERVER))

    def load(self, tenant_ids: list[UUID]) -> float:
        """COPY the rows with action_logs' secondary indexes set aside, then build them (a bulk
        load's usual order: 10M rows into eight live B-trees and two GIN indexes ran at ~4k
        rows/s, as the trees outgrew memory); the rate counts the index builds."""
        started = time.perf_counter()
        indexes = asyncio.run(
            self.sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'action_logs' "
                "AND indexname <> 'pk_action_logs'"
            )
        )
        for index in indexes:
            asyncio.run(self.sql(f"DROP INDEX {index['indexname']}"))
        copied = asyncio.run(load.copy_rows(self.dsn, generate(tenant_ids, ROWS), connections=2))
        built = time.perf_counter()
        asyncio.run(self.build([index["indexdef"] for index in indexes]))
        print(f"COPY at {copied:,.0f} rows/s; {len(indexes)} indexes built in "
              f"{time.perf_counter() - built:,.0f} s", flush=True)  # fmt: skip
        return ROWS / (time.perf_counter() - started)

    async def build(self, definitions: list[str]) -> None:
        """Build indexes two at a time (the machine's cores), with room to sort in memory."""

        async def one(definition: str) -> None:
            connection = await asyncpg.connect(self.dsn)
            try:
                await connection.execute("SET maintenance_work_mem = '512MB'")
                await connection.execute(definition)
            finally:
                await connection.close()

        pending = list(definitions)
        while pending:
            await asyncio.gather(*(one(definition) for definition in pending[:2]))
            pending = pending[2:]

    def analyze(self) -> None:
        asyncio.run(self.sql("VACUUM ANALYZE"))
        asyncio.run(self.sql("SELECT pg_stat_reset()"))

    def limits(self, tenant_id: UUID) -> dict[str, float]:
        probe = list(load.generate_rows([tenant_id], 100_000, seed=int(time.time())))
        return {
            "limit_1_rows_s": asyncio.run(load.copy_rows(self.dsn, probe[:50_000], 1)),
            "limit_2_rows_s": asyncio.run(load.copy_rows(self.dsn, probe[50_000:], 2)),
        }

    def wal_position(self) -> tuple[int, int]:
        """(WAL bytes written so far, actions stored)."""
        row = asyncio.run(
            self.sql(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS wal, "
                "(SELECT count(*) FROM action_logs) AS rows"
            )
        )[0]
        return int(row["wal"]), int(row["rows"])

    def sizes(self) -> dict[str, Any]:
        """Bytes per stored action: heap (with TOAST), each index, and the rollups."""
        rows = asyncio.run(
            self.sql(
                "SELECT c.relname AS name, pg_total_relation_size(c.oid) AS total, "
                "pg_indexes_size(c.oid) AS indexes FROM pg_class c "
                "WHERE c.relname IN ('action_logs', 'action_rollups', 'action_user_rollups', "
                "'action_failure_rollups')"
            )
        )
        indexes = asyncio.run(
            self.sql(
                "SELECT indexrelname AS name, pg_relation_size(indexrelid) AS bytes "
                "FROM pg_stat_user_indexes WHERE relname = 'action_logs' ORDER BY 2 DESC"
            )
        )
        count = asyncio.run(self.sql("SELECT count(*) AS n FROM action_logs"))[0]["n"]
        tables = {r["name"]: (int(r["total"]), int(r["indexes"])) for r in rows}
        return {
            "rows": int(count),
            "tables": tables,
            "indexes": {r["name"]: int(r["bytes"]) for r in indexes},
        }

    def index_usage(self) -> dict[str, int]:
        rows = asyncio.run(
            self.sql(
                "SELECT relname || '.' || indexrelname AS name, idx_scan FROM pg_stat_user_indexes "
                "ORDER BY relname, indexrelname"
            )
        )
        return {r["name"]: int(r["idx_scan"]) for r in rows}

    def version(self) -> str:
        return str(asyncio.run(self.sql("SHOW server_version", SERVER))[0][0])

    def drop(self) -> None:
        asyncio.run(self.sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)", SERVER))


class Sqlite:
    name = "SQLite"

    def __init__(self) -> None:
        given = os.environ.get("BENCH_SQLITE_PATH")  # with BENCH_REUSE=1: a loaded file
        self.directory = (
            Path(given).parent if given else Path(tempfile.mkdtemp(prefix="actionlog-bench-"))
        )
        self.path = given or str(self.directory / "bench.db")
        self.url = f"sqlite+aiosqlite:///{self.path}"

    def create(self) -> None:
        pass

    def load(self, tenant_ids: list[UUID]) -> float:
        return load.sqlite_insert(self.path, generate(tenant_ids, ROWS))

    def analyze(self) -> None:
        connection = sqlite3.connect(self.path)
        try:
            connection.execute("ANALYZE")
        finally:
            connection.close()

    def limits(self, tenant_id: UUID) -> dict[str, float]:
        seed = int(time.time())
        batch = load.generate_rows([tenant_id], 50_000, seed=seed)
        single = load.generate_rows([tenant_id], 2_000, seed=seed + 1)
        return {
            "limit_1_rows_s": load.sqlite_insert(self.path, batch),
            "limit_single_rows_s": load.sqlite_insert(self.path, single, per_commit=1),
        }

    def version(self) -> str:
        return sqlite3.sqlite_version

    def drop(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


BACKEND: Postgres | Sqlite = Sqlite() if DB == "sqlite" else Postgres()


def service_env() -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": BACKEND.url, "ADMIN_TOKEN": ADMIN_TOKEN,
            "LOG_LEVEL": "warning"}  # fmt: skip


def actionlog(*args: str) -> str:
    done = subprocess.run(
        [str(BIN / "actionlog"), *args], env=service_env(), capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"actionlog {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def reuse() -> tuple[list[dict[str, Any]], dict[str, float]]:
    """The loaded database of an earlier run (BENCH_REUSE=1), with new keys for its tenants."""
    actionlog("migrate")
    if isinstance(BACKEND, Postgres):
        asyncio.run(BACKEND.sql("VACUUM ANALYZE action_logs"))
        asyncio.run(BACKEND.sql("SELECT pg_stat_reset()"))
    else:
        BACKEND.analyze()
    tenants = []
    for i in range(10):
        key = json.loads(actionlog("key", "create", f"bench-{i}", "--scopes", "read,write",
                                   "--json"))  # fmt: skip
        tenants.append({"id": key["tenant_id"], "api_key": key["key"]})
    return tenants, {"initial_load_rows_s": float("nan"), "rebuild_s": float("nan")}


def prepare() -> tuple[list[dict[str, Any]], dict[str, float]]:
    """A fresh database with 10 tenants and ROWS actions; returns tenants and load figures."""
    if REUSE:
        return reuse()
    BACKEND.create()
    actionlog("migrate")
    tenants = [json.loads(actionlog("tenant", "create", f"Bench {i}", "--json")) for i in range(10)]
    print(f"loading {ROWS:,} rows ({SHAPE}) ...", flush=True)
    rate = BACKEND.load([UUID(t["id"]) for t in tenants])
    print(f"loaded {ROWS:,} rows at {rate:,.0f} rows/s", flush=True)
    started = time.perf_counter()
    actionlog("rollups", "rebuild")
    rebuild = time.perf_counter() - started
    print(f"rollups rebuilt in {rebuild:,.0f} s", flush=True)
    BACKEND.analyze()
    return tenants, {"initial_load_rows_s": rate, "rebuild_s": rebuild}


def start_server() -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [str(BIN / "actionlog"), "serve", "--workers", str(WORKERS), "--port", str(PORT)],
        env=service_env(),
    )
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{BASE}/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not become ready")


def worker_pids(master: int) -> list[int]:
    """The serving processes (not multiprocessing's resource tracker); the master with one."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    workers = [int(pid) for pid in children
               if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]  # fmt: skip
    return workers or [master]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cursor_of_page(key: str, page: int) -> str:
    """Walk `page - 1` pages of 100 from the newest and return the cursor of the next."""
    cursor = ""
    with httpx.Client(base_url=BASE, headers={"X-API-Key": key}, timeout=TIMEOUT) as client:
        for _ in range(page - 1):
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            response = client.get(ACTIONS, params=params)
            if "x-next-cursor" not in response.headers:
                raise SystemExit(f"walking pages: {response.status_code} {response.text[:300]}")
            cursor = response.headers["x-next-cursor"]
    return cursor


def export_csv(key: str, master: int) -> dict[str, float]:
    """Stream the big tenant's CSV export, sampling the workers' RSS meanwhile."""
    pids = worker_pids(master)
    baseline = {pid: rss_mb(pid) for pid in pids}
    peak = dict(baseline)
    rows = 0
    started = time.perf_counter()
    with (
        httpx.Client(base_url=BASE, headers={"X-API-Key": key}, timeout=TIMEOUT * 10) as client,
        client.stream("GET", f"{ACTIONS}/export", params={"format": "csv"}) as response,
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
    return {"rows": rows - 1, "rows_per_s": (rows - 1) / elapsed, "rss_mb": growth}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def one_round(tenants: list[dict[str, Any]], master: int, page_1000: str) -> dict[str, float]:
    big, other = tenants[0]["api_key"], tenants[1]["api_key"]
    now = datetime.now(UTC)
    figures: dict[str, float] = {}

    def get(name: str, path: str, connections: int = 4) -> None:
        result = wrk.run(BASE, "get.lua", key=big, path=path, connections=connections,
                         seconds=SECONDS, threads=1)  # fmt: skip
        figures[f"{name}_rps"] = result.requests_per_s
        figures[f"{name}_p50_ms"] = result.p50_ms
        figures[f"{name}_p99_ms"] = result.p99_ms
        figures[f"{name}_server_p50_ms"] = result.server_p50_ms or float("nan")
        figures[f"{name}_server_p99_ms"] = result.server_p99_ms or float("nan")

    def post(name: str, script: str, path: str, connections: int, events: int = 1) -> None:
        wal_before = BACKEND.wal_position() if isinstance(BACKEND, Postgres) else None
        result = wrk.run(BASE, script, key=other, path=path, connections=connections,
                         seconds=SECONDS)  # fmt: skip
        figures[f"{name}_ev_s"] = result.requests_per_s * events
        figures[f"{name}_p50_ms"] = result.p50_ms
        figures[f"{name}_p99_ms"] = result.p99_ms
        if wal_before is not None and isinstance(BACKEND, Postgres):
            wal, stored = BACKEND.wal_position()
            if stored > wal_before[1]:
                figures[f"{name}_wal_bytes_row"] = (wal - wal_before[0]) / (stored - wal_before[1])

    noop = wrk.run(BASE, "get.lua", path="/health", connections=64, seconds=SECONDS)
    figures["noop_rps"] = noop.requests_per_s
    figures.update(BACKEND.limits(UUID(tenants[9]["id"])))

    single_conns = 64 if DB == "postgresql" else 16
    batch_conns = 16 if DB == "postgresql" else 4
    post("single", "post_one.lua", ACTIONS, single_conns)
    post("batch", "post_batch.lua", f"{ACTIONS}/batch", batch_conns, 100)
    # audit writes side by side with the action writes they are compared with
    post("audit", "post_audit.lua", AUDITS, single_conns)
    post("audit_batch", "post_audit_batch.lua", f"{AUDITS}/batch", batch_conns, 100)

    get("newest_failed", f"{ACTIONS}?status=failure&limit=100")
    get("page_1", f"{ACTIONS}?limit=100")
    get("page_1000", f"{ACTIONS}?limit=100&cursor={page_1000}")
    get("search", f"{ACTIONS}?q=rate%20limit&limit=100")  # 1 row in 60 matches
    get("search_rare", f"{ACTIONS}?q=quota%20exhausted&limit=100")  # no row matches
    get("failed_recent", f"{ACTIONS}/failed/recent?minutes=1440&limit=100")
    get("stats_all", "/api/v1/logs/stats")
    get("stats_24h", f"/api/v1/logs/stats?since={iso(now - timedelta(hours=24))}")
    month_ago = iso(now - timedelta(days=30))
    get("timeseries_30d", f"/api/v1/logs/stats/timeseries?interval=hour&since={month_ago}")
    get("timeseries_minute", "/api/v1/logs/stats/timeseries?interval=minute")
    get("stats_users", "/api/v1/logs/stats/users?limit=100")
    get("stats_failures", "/api/v1/logs/stats/failures")

    export = export_csv(big, master)
    figures.update(export_rows=export["rows"], export_rows_s=export["rows_per_s"],
                   export_rss_mb=export["rss_mb"])  # fmt: skip
    return figures


def machine() -> str:
    return (f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, "
            f"Python {platform.python_version()}, {BACKEND.name} {BACKEND.version()}")  # fmt: skip


def main() -> None:
    started = time.perf_counter()
    tenants, load_figures = prepare()
    sizes = BACKEND.sizes() if isinstance(BACKEND, Postgres) else None
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
    usage = BACKEND.index_usage() if isinstance(BACKEND, Postgres) else None
    medians = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
    medians.update(load_figures, deep_page=DEEP_PAGE, minutes=(time.perf_counter() - started) / 60)
    setup = report.Setup(DB, BACKEND.name, SHAPE, ROWS, BURST_ROWS, WORKERS, RUNS, SECONDS,
                         machine())  # fmt: skip
    section = report.render(medians, setup, sizes, usage)
    path = Path(os.environ.get("BENCH_RESULTS", HERE / "RESULTS.md"))
    path.write_text(report.merge(path.read_text() if path.exists() else "", setup, section))
    print(section)
    BACKEND.drop()


if __name__ == "__main__":
    main()
