"""The write path under variants of the server: what each option costs, and 1 worker against 2.

One fresh PostgreSQL database (`BENCH_PG`'s server) with BENCH_INGEST_ROWS actions loaded by
COPY; then, for each variant, `actionlog serve --workers N` with the variant's environment,
driven by wrk from a separate process over loopback:

- the no-op route (`/health`, 64 connections): the HTTP limit of that very server;
- single-event `POST /api/v1/logs/actions` (64 connections), its ratio to the no-op route;
- `POST …/batch` of 100 (16 connections);
- the newest page of the list route (`GET /api/v1/logs/actions?limit=100`, 4 connections),
  the service's own p99 from its Server-Timing header.

Variants run round-robin, BENCH_RUNS rounds of BENCH_SECONDS per figure, so slow drift of the
machine spreads over all of them; each figure is the median of its rounds. The variants:
baseline (what `actionlog serve` does by default, metrics included), metrics off, a per-key
rate limit counted in process and in Redis (a limit too high to refuse, so every request pays
the counting), and 1 worker instead of 2 (the scale curve). When the schema has row-level
security (`DATABASE_ROLE`, see docs/security.md "Row-level security"), also RLS off: the service
connecting as the tables' owner-superuser, which policies do not apply to.

Run: .venv/bin/python bench/ingest.py   (writes the "Write path: variants" section of
bench/RESULTS.md; BENCH_RESULTS to write elsewhere; BENCH_VARIANTS=a,b to choose)
"""

import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).parent))
import load
import report
import wrk

SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ROWS = int(os.environ.get("BENCH_INGEST_ROWS", "100000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "6"))
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")
DB_NAME = os.environ.get("BENCH_DB_NAME", "actionlog_bench_ingest")
DSN = SERVER.rsplit("/", 1)[0] + "/" + DB_NAME
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
ROOT = HERE.parent
ACTIONS = "/api/v1/logs/actions"
HIGH = str(10**9)  # a per-minute limit no run reaches: the counting is paid, nothing refused

# name -> (workers, environment)
VARIANTS: dict[str, tuple[int, dict[str, str]]] = {
    "baseline (2 workers)": (2, {}),
    "metrics off": (2, {"METRICS_ENABLED": "false"}),
    "rate limit, in process": (2, {"RATE_LIMIT_PER_MINUTE": HIGH}),
    "rate limit, Redis": (2, {"RATE_LIMIT_PER_MINUTE": HIGH, "REDIS_URL": REDIS}),
    "RLS off (owner role)": (2, {"DATABASE_ROLE": ""}),
    "1 worker": (1, {}),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def sql(statement: str, dsn: str = DSN) -> Any:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetch(statement)
    finally:
        await connection.close()


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    url = DSN.replace("postgresql://", "postgresql+asyncpg://", 1)
    return {**os.environ, "DATABASE_URL": url, "ADMIN_TOKEN": ADMIN_TOKEN, "LOG_LEVEL": "warning",
            **(extra or {})}  # fmt: skip


def actionlog(*args: str) -> str:
    done = subprocess.run([str(BIN / "actionlog"), *args], env=env(), cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"actionlog {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def has_rls() -> bool:
    rows = asyncio.run(sql("SELECT count(*) AS n FROM pg_class WHERE relforcerowsecurity"))
    return int(rows[0]["n"]) > 0


def prepare() -> tuple[str, str]:
    """A fresh database with ROWS actions of one tenant; the keys of a reader and a writer."""
    asyncio.run(sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)", SERVER))
    asyncio.run(sql(f"CREATE DATABASE {DB_NAME}", SERVER))
    actionlog("migrate")
    read = json.loads(actionlog("tenant", "create", "Bench read", "--json"))
    write = json.loads(actionlog("tenant", "create", "Bench write", "--json"))
    rate = asyncio.run(load.copy_rows(DSN, load.generate_rows([UUID(read["id"])], ROWS), 2))
    print(f"loaded {ROWS:,} rows at {rate:,.0f} rows/s", flush=True)
    actionlog("rollups", "rebuild")
    asyncio.run(sql("VACUUM ANALYZE"))
    return read["api_key"], write["api_key"]


def serve(workers: int, extra: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "actionlog"), "serve", "--workers", str(workers), "--port", str(port)],
        env=env(extra),
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not become ready")


def measure(base: str, read_key: str, write_key: str) -> dict[str, float]:
    noop = wrk.run(base, "get.lua", path="/health", connections=64, seconds=SECONDS)
    single = wrk.run(base, "post_one.lua", key=write_key, path=ACTIONS, connections=64,
                     seconds=SECONDS)  # fmt: skip
    batch = wrk.run(base, "post_batch.lua", key=write_key, path=f"{ACTIONS}/batch",
                    connections=16, seconds=SECONDS)  # fmt: skip
    page = wrk.run(base, "get.lua", key=read_key, path=f"{ACTIONS}?limit=100", connections=4,
                   seconds=SECONDS, threads=1)  # fmt: skip
    return {
        "noop": noop.requests_per_s,
        "single": single.requests_per_s,
        "batch": batch.requests_per_s * 100,
        "list_rps": page.requests_per_s,
        "list_p99": page.server_p99_ms or float("nan"),
    }


def render(results: dict[str, dict[str, float]], rls: bool, minutes: float) -> str:
    base = results[next(iter(results))]
    lines = [
        "<!-- section: ingest-variants -->",
        "## Write path: variants of the server (`bench/ingest.py`)",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; whole run {minutes:.0f} min",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, PostgreSQL; wrk over loopback from another process",
        f"- data: {ROWS:,} actions of the listed tenant; row-level security "
        f"{'on' if rls else 'not in this schema'}",
        f"- each figure: median of {RUNS} rounds of {SECONDS} s, variants taken round-robin",
        "",
        "| variant | no-op req/s | single POST ev/s (of no-op) | vs baseline | batch ev/s | vs "
        "baseline | list req/s | list p99 (service) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, f in results.items():
        lines.append(
            f"| {name} | {f['noop']:,.0f} | {f['single']:,.0f} ({f['single'] / f['noop']:.0%}) "
            f"| {f['single'] / base['single']:.2f}x | {f['batch']:,.0f} | "
            f"{f['batch'] / base['batch']:.2f}x | {f['list_rps']:,.0f} | {f['list_p99']:.1f} ms |"
        )
    lines += ["", "<!-- end -->", ""]
    return "\n".join(lines)


def main() -> None:
    started = time.perf_counter()
    read_key, write_key = prepare()
    rls = has_rls()
    chosen = os.environ.get("BENCH_VARIANTS")
    names = [n for n in VARIANTS if (rls or not n.startswith("RLS"))]
    if chosen:
        names = [n for n in names if n in chosen.split(",")]
    rounds: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    try:
        for number in range(1, RUNS + 1):
            for name in names:
                print(f"round {number}/{RUNS}: {name} ...", flush=True)
                workers, extra = VARIANTS[name]
                process, base = serve(workers, extra)
                try:
                    rounds[name].append(measure(base, read_key, write_key))
                finally:
                    process.terminate()
                    process.wait(timeout=30)
    finally:
        asyncio.run(sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)", SERVER))
    results = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for name, runs in rounds.items()
    }
    section = render(results, rls, (time.perf_counter() - started) / 60)
    report.write_section("ingest-variants", section)
    print(section)


if __name__ == "__main__":
    main()
