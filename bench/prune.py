# ruff: noqa: E501 (the report table)
"""Retention on PostgreSQL: prune rate, bloat, ingest during a prune, and time partitions.

One run, on a fresh database `actionlog_bench_prune` on `BENCH_PG` (dropped at the end):

1. loads PRUNE_ROWS actions (default 1,000,000) of one tenant, 40 to 100 days old, with COPY;
   rollups rebuilt, VACUUM ANALYZE;
2. starts `actionlog serve --workers 2` and measures single-event POSTs with wrk (64
   connections, PRUNE_SECONDS) into a second tenant: the baseline;
3. gives the first tenant `retention_days` 30 and restarts the service with the scheduler on:
   one worker takes the scheduler's turn and prunes the rows in batches (archive on), while
   wrk measures the same POSTs again, in the same run; the rows deleted during that window
   give the prune rate under load. The service is then stopped mid-prune (safe: see
   app/retention/service.py), and the rest is pruned with `actionlog prune --before`,
   ARCHIVE=false and no load: the bare delete rate; then the table's size and dead tuples
   before and after VACUUM;
4. the same rows, copied at the start into a table partitioned by month on `created_at`, are
   dropped by partition (DETACH CONCURRENTLY, DROP), timing it and inserts that run beside it.

Writes bench/PRUNE_RESULTS.md. The machine should be otherwise idle.
"""

import asyncio
import json
import os
import platform
import shutil
import socket
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
import wrk

ROWS = int(os.environ.get("PRUNE_ROWS", "1000000"))
SECONDS = int(os.environ.get("PRUNE_SECONDS", "15"))
BARE_SECONDS = int(os.environ.get("PRUNE_BARE_SECONDS", "60"))
SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = "actionlog_bench_prune"


def free_port() -> int:
    """A port nobody listens on (other benchmarks may share the machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PORT = int(os.environ.get("BENCH_PORT", "0")) or free_port()
BASE = f"http://127.0.0.1:{PORT}"
SECOND_PORT = free_port()  # the restarted service: no wait for the port to be released
SECOND_BASE = f"http://127.0.0.1:{SECOND_PORT}"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
BIN = Path(sys.executable).parent
HERE = Path(__file__).parent


def dsn() -> str:
    return SERVER.rsplit("/", 1)[0] + "/" + DB_NAME


def env(**extra: str) -> dict[str, str]:
    url = dsn().replace("postgresql://", "postgresql+asyncpg://", 1)
    return {
        **os.environ,
        "DATABASE_URL": url,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "LOG_LEVEL": "warning",
        "RETENTION_INTERVAL_MINUTES": "0",
        **extra,
    }


def actionlog(*args: str, **extra: str) -> str:
    done = subprocess.run(
        [str(BIN / "actionlog"), *args], env=env(**extra), capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"actionlog {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


async def sql(query: str, *args: Any, database: str | None = None) -> Any:
    connection = await asyncpg.connect(database or dsn())
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


async def script(statements: str) -> None:
    connection = await asyncpg.connect(dsn())
    try:
        await connection.execute(statements)
    finally:
        await connection.close()


def old_rows(tenant: UUID, count: int) -> list[tuple[Any, ...]]:
    """`count` actions of `tenant`, created 40 to 100 days ago."""
    shift = timedelta(days=40)
    rows = []
    for row in load.generate_rows([tenant], count, days=60):
        moved = list(row)
        for index in (19, 20, 23, 24):  # started, completed, created, updated
            moved[index] = moved[index] - shift
        rows.append(tuple(moved))
    return rows


async def table_figures() -> dict[str, float]:
    await sql("SELECT pg_stat_force_next_flush()")
    await asyncio.sleep(1.5)
    row = (
        await sql(
            "SELECT pg_total_relation_size('action_logs') AS total,"
            " pg_relation_size('action_logs') AS heap, n_live_tup, n_dead_tup"
            " FROM pg_stat_user_tables WHERE relname = 'action_logs'"
        )
    )[0]
    return {
        "total_mb": row["total"] / 2**20,
        "heap_mb": row["heap"] / 2**20,
        "live": row["n_live_tup"],
        "dead": row["n_dead_tup"],
    }


def start_server(port: int = PORT, **extra: str) -> subprocess.Popen[bytes]:
    with socket.socket() as probe:  # refuse to measure someone else's server
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"port {port} is taken")
    process = subprocess.Popen(
        [str(BIN / "actionlog"), "serve", "--workers", "2", "--port", str(port)], env=env(**extra)
    )
    for _ in range(1200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not become ready")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=60)


async def remaining(tenant: UUID) -> int:
    rows = await sql("SELECT count(*) AS n FROM action_logs WHERE tenant_id = $1", tenant)
    return int(rows[0]["n"])


async def scheduled_prune(old: UUID, key: str, archive: Path) -> dict[str, Any]:
    """Baseline POST rate, then the same while the scheduler prunes the old tenant."""
    server = start_server()
    try:
        wrk.run(BASE, "post_one.lua", key=key, path="/api/v1/logs/actions", seconds=3)
        baseline = wrk.run(BASE, "post_one.lua", key=key, path="/api/v1/logs/actions",
                           seconds=SECONDS)  # fmt: skip
    finally:
        stop(server)
    actionlog("tenant", "retention", str(old), "--retention-days", "30")
    before = await table_figures()
    server = start_server(SECOND_PORT, RETENTION_INTERVAL_MINUTES="0.05", ARCHIVE_DIR=str(archive))
    try:
        started = time.perf_counter()
        while await remaining(old) == ROWS:  # the first run: one interval after start
            await asyncio.sleep(0.2)
            if time.perf_counter() - started > 300:
                raise SystemExit("the scheduler did not start pruning")
        at_start, window_start = await remaining(old), time.perf_counter()
        during = wrk.run(SECOND_BASE, "post_one.lua", key=key, path="/api/v1/logs/actions",
                         seconds=SECONDS)  # fmt: skip
        at_end, window = await remaining(old), time.perf_counter() - window_start
    finally:
        stop(server)  # stops the prune mid-way, as a crash or deploy would: it is safe to
    deleted_in_window = at_start - at_end
    left = await remaining(old)
    cutoff = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    bare_started = time.perf_counter()
    bare = subprocess.Popen(  # noqa: ASYNC220 (the benchmark waits for it on purpose)
        [str(BIN / "actionlog"), "prune", str(old), "--kind", "actions", "--before", cutoff],
        env=env(ARCHIVE="false", RETENTION_BATCH_PAUSE_MS="0", RETENTION_DUTY="1"),
    )
    try:  # at most BARE_SECONDS: stopping a prune mid-way is safe
        bare.wait(timeout=BARE_SECONDS)
    except subprocess.TimeoutExpired:
        bare.terminate()
        bare.wait(timeout=30)
    bare_seconds = time.perf_counter() - bare_started
    bare_rows = left - await remaining(old)
    after = await table_figures()
    await sql("VACUUM action_logs")
    vacuumed = await table_figures()
    files = await sql("SELECT count(*) AS n, sum(bytes) AS b FROM retention_archives")
    stats = await sql(
        "SELECT coalesce(sum(total), 0) AS n FROM action_rollups WHERE tenant_id = $1"
        " AND period = 86400",
        old,
    )
    return {
        "baseline_ev_s": baseline.requests_per_s,
        "baseline_p99_ms": baseline.p99_ms,
        "during_ev_s": during.requests_per_s,
        "during_p99_ms": during.p99_ms,
        "ratio": during.requests_per_s / baseline.requests_per_s,
        "prune_running_all_window": at_end > 0,
        "prune_window_rows": deleted_in_window,
        "prune_rows_s": deleted_in_window / window,
        "bare_rows": bare_rows,
        "bare_s": bare_seconds,
        "bare_rows_s": bare_rows / bare_seconds,
        "files": files[0]["n"],
        "archive_mb": (files[0]["b"] or 0) / 2**20,
        "rollup_total_after": stats[0]["n"],
        "rows_left": await remaining(old),
        "before": before,
        "after": after,
        "vacuumed": vacuumed,
    }


PARTITIONED = """
CREATE TABLE action_logs_part (LIKE action_logs INCLUDING DEFAULTS)
    PARTITION BY RANGE (created_at);
ALTER TABLE action_logs_part ADD PRIMARY KEY (tenant_id, created_at, id);
CREATE INDEX ON action_logs_part (tenant_id, status, created_at);
CREATE INDEX ON action_logs_part (tenant_id, action_type, created_at);
CREATE INDEX ON action_logs_part (tenant_id, provider_name, created_at);
CREATE INDEX ON action_logs_part (tenant_id, created_at DESC, id DESC);
"""


def month_starts(now: datetime) -> list[datetime]:
    """The first days of the last six months, oldest first."""
    months = []
    month = datetime(now.year, now.month, 1, tzinfo=UTC)
    for _ in range(6):
        months.append(month)
        month = (month - timedelta(days=1)).replace(day=1)
    return months[::-1]


async def partitioned_copy() -> None:
    """A copy of the table partitioned by month, with the same rows (INSERT ... SELECT)."""
    await script(PARTITIONED)
    for start in month_starts(datetime.now(UTC)):
        end = (start + timedelta(days=32)).replace(day=1)
        name = f"action_logs_part_{start:%Y_%m}"
        await sql(
            f"CREATE TABLE {name} PARTITION OF action_logs_part"
            f" FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    columns = ", ".join(load.COLUMNS)
    await sql(f"INSERT INTO action_logs_part ({columns}) SELECT {columns} FROM action_logs")


async def partitions(old: UUID) -> dict[str, float]:
    """Drop the months past the cutoff from the partitioned copy, inserting beside it."""
    now = datetime.now(UTC)
    months = month_starts(now)
    await sql("VACUUM ANALYZE action_logs_part")
    cutoff = now - timedelta(days=30)
    doomed = [m for m in months if (m + timedelta(days=32)).replace(day=1) <= cutoff]
    boundary = (doomed[-1] + timedelta(days=32)).replace(day=1)
    counted = await sql(
        "SELECT count(*) AS n FROM action_logs_part WHERE created_at < $1", boundary
    )
    dropped_rows = int(counted[0]["n"])

    inserted = 0
    latencies: list[float] = []
    stop_inserts = asyncio.Event()

    async def insert_beside() -> None:
        nonlocal inserted
        writer = await asyncpg.connect(dsn())
        try:
            template = old_rows(old, 1)[0]
            while not stop_inserts.is_set():
                row = list(template)
                row[0] = load.new_id()
                row[23] = row[24] = datetime.now(UTC)
                began = time.perf_counter()
                await writer.copy_records_to_table(
                    "action_logs_part", records=[tuple(row)], columns=load.COLUMNS
                )
                latencies.append(time.perf_counter() - began)
                inserted += 1
        finally:
            await writer.close()

    task = asyncio.create_task(insert_beside())
    await asyncio.sleep(1)
    started = time.perf_counter()
    for start in doomed:
        name = f"action_logs_part_{start:%Y_%m}"
        await sql(f"ALTER TABLE action_logs_part DETACH PARTITION {name} CONCURRENTLY")
        await sql(f"DROP TABLE {name}")
    seconds = time.perf_counter() - started
    stop_inserts.set()
    await task
    latencies.sort()
    return {
        "partitions_dropped": len(doomed),
        "rows_dropped": dropped_rows,
        "seconds": seconds,
        "rows_s": dropped_rows / seconds if seconds else 0.0,
        "insert_max_ms": latencies[-1] * 1000 if latencies else 0.0,
        "insert_p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0,
    }


def machine() -> str:
    pg = subprocess.run(["psql", SERVER, "-tAc", "SHOW server_version"], capture_output=True,
                        text=True).stdout.strip()  # fmt: skip
    return (f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, "
            f"Python {platform.python_version()}, PostgreSQL {pg}")  # fmt: skip


def render(s: dict[str, Any], part: dict[str, float]) -> str:
    b, a, v = s["before"], s["after"], s["vacuumed"]
    return f"""# Retention benchmark

{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}; {ROWS:,} rows; `python bench/prune.py`.

| figure | value |
| --- | --- |
| single-event POST, baseline (wrk, 64 connections, {SECONDS} s) | {s["baseline_ev_s"]:,.0f} ev/s, p99 {s["baseline_p99_ms"]:.1f} ms |
| the same while the scheduler prunes the {ROWS:,} rows (archive on, RETENTION_DUTY 0.25) | {s["during_ev_s"]:,.0f} ev/s, p99 {s["during_p99_ms"]:.1f} ms |
| ingest kept during the prune (target >= 80%) | **{s["ratio"]:.0%}** (prune running for the whole window: {s["prune_running_all_window"]}) |
| scheduled prune with archive, during that window | {s["prune_rows_s"]:,.0f} rows/s ({s["prune_window_rows"]:,} rows; {s["files"]} files, {s["archive_mb"]:.1f} MB gzip) |
| then `actionlog prune --before`, ARCHIVE=false, duty 1, no load (at most {BARE_SECONDS} s) | {s["bare_rows_s"]:,.0f} rows/s ({s["bare_rows"]:,} rows in {s["bare_s"]:.0f} s, process start included) |
| rollup total of the pruned tenant afterwards = its rows left (exact) | {s["rollup_total_after"]} = {s["rows_left"]:,} |
| table before the prune | {b["total_mb"]:.0f} MB with indexes (heap {b["heap_mb"]:.0f} MB), {b["live"]:,} live |
| right after it | {a["total_mb"]:.0f} MB (heap {a["heap_mb"]:.0f} MB), {a["dead"]:,} dead tuples |
| after VACUUM | {v["total_mb"]:.0f} MB (heap {v["heap_mb"]:.0f} MB), {v["dead"]:,} dead: the space is reusable, not returned |
| monthly partitions: DETACH CONCURRENTLY + DROP of {part["partitions_dropped"]} months | {part["rows_dropped"]:,} rows in {part["seconds"]:.2f} s ({part["rows_s"]:,.0f} rows/s), no dead tuples |
| single-row inserts beside the partition drop | p99 {part["insert_p99_ms"]:.1f} ms, max {part["insert_max_ms"]:.1f} ms |
"""


async def prepare() -> tuple[dict[str, Any], dict[str, Any]]:
    await sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)", database=SERVER)
    await sql(f"CREATE DATABASE {DB_NAME}", database=SERVER)
    actionlog("migrate")
    old = json.loads(actionlog("tenant", "create", "Old rows", "--json"))
    live = json.loads(actionlog("tenant", "create", "Live", "--json"))
    print(f"loading {ROWS:,} old rows ...", flush=True)
    rows = old_rows(UUID(old["id"]), ROWS)
    await load.copy_rows(dsn(), rows, connections=2)
    del rows
    actionlog("rollups", "rebuild")
    print("copying them into a table partitioned by month ...", flush=True)
    await partitioned_copy()
    await sql("VACUUM ANALYZE")
    return old, live


def main() -> None:
    old, live = asyncio.run(prepare())
    archive = Path(tempfile.mkdtemp(prefix="actionlog-bench-archive-"))
    try:
        print("baseline, then ingest during the scheduled prune ...", flush=True)
        scheduled = asyncio.run(scheduled_prune(UUID(old["id"]), live["api_key"], archive))
        print("partitions ...", flush=True)
        part = asyncio.run(partitions(UUID(old["id"])))
    finally:
        shutil.rmtree(archive, ignore_errors=True)
    text = render(scheduled, part)
    (HERE / "PRUNE_RESULTS.md").write_text(text)
    print(text)
    print(json.dumps({"scheduled": scheduled, "partitions": part}, default=str))
    asyncio.run(sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)", database=SERVER))


if __name__ == "__main__":
    main()
