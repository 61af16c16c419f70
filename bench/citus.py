"""Ingest on a Citus cluster against one PostgreSQL, side by side in one run.

Starts, from the installed PostgreSQL 15 and Citus, a coordinator and two workers
(tests/citus.py) and one plain PostgreSQL server with the same settings, each on its own port
on this machine. On each: `actionlog migrate` (and on the cluster `actionlog distribute`), one
tenant, then `actionlog serve --workers 2` with the defaults (row-level security on), driven by
wrk over loopback: the no-op route (`/health`, 64 connections), single-event
`POST /api/v1/logs/actions` (64 connections) and `POST …/batch` of 100 (16 connections).
Targets are taken round-robin, BENCH_RUNS rounds of BENCH_SECONDS per figure; each figure is
the median of its rounds, and the Citus figures are given as ratios to plain PostgreSQL's of
the same run.

`BENCH_BASELINE_SRC=<dir>` adds a third target: the service of another source tree (a checkout
of an earlier commit) on the plain PostgreSQL server, in a database of its own, to compare the
statements of two versions on one engine.

Run: .venv/bin/python bench/citus.py   (writes the "Citus" section of bench/RESULTS.md;
BENCH_RESULTS to write elsewhere). Needs Citus installed (see tests/citus.py).
"""

import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
import report  # noqa: E402
import wrk  # noqa: E402

from tests import citus  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
BIN = Path(sys.executable).parent
ACTIONS = "/api/v1/logs/actions"
BASELINE = os.environ.get("BENCH_BASELINE_SRC")


class PlainNode(citus.Node):
    """A PostgreSQL server with the nodes' settings, without Citus."""

    def settings(self) -> str:
        return super().settings().replace("shared_preload_libraries = 'citus'\n", "")


def run_actionlog(url: str, *args: str, source: Path = ROOT) -> str:
    command = [str(BIN / "python"), "-c", "import sys; from app.cli import main; sys.exit(main())"]
    done = subprocess.run(
        [*command, *args],
        env={
            **os.environ,
            "DATABASE_URL": url,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "LOG_LEVEL": "warning",
            "PYTHONPATH": str(source),
        },
        cwd=source,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"actionlog {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def serve(url: str, source: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = citus.pgcluster.free_port()
    process = subprocess.Popen(
        [
            str(BIN / "python"),
            "-c",
            "import sys; from app.cli import main; sys.exit(main())",
            "serve",
            "--workers",
            "2",
            "--port",
            str(port),
        ],
        env={
            **os.environ,
            "DATABASE_URL": url,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "LOG_LEVEL": "warning",
            "PYTHONPATH": str(source),
        },
        cwd=source,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("server did not become ready")


def measure(base: str, key: str) -> dict[str, float]:
    noop = wrk.run(base, "get.lua", path="/health", connections=64, seconds=SECONDS)
    single = wrk.run(base, "post_one.lua", key=key, path=ACTIONS, connections=64,
                     seconds=SECONDS)  # fmt: skip
    batch = wrk.run(base, "post_batch.lua", key=key, path=f"{ACTIONS}/batch", connections=16,
                    seconds=SECONDS)  # fmt: skip
    return {
        "noop": noop.requests_per_s,
        "single": single.requests_per_s,
        "batch": batch.requests_per_s * 100,
    }


async def create_database(dsn: str, name: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def render(results: dict[str, dict[str, float]], minutes: float) -> str:
    plain = results["PostgreSQL"]
    lines = [
        "<!-- section: citus -->",
        "## Ingest on a Citus cluster against one PostgreSQL (`bench/citus.py`)",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; whole run {minutes:.1f} min",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; every server on this machine: PostgreSQL 15 alone, and "
        "Citus 13 as a coordinator and two workers (same settings: fsync off, "
        "synchronous_commit on for each acknowledged write as the service sets it)",
        "- the service: `actionlog serve --workers 2`, defaults (row-level security on); on "
        "Citus after `actionlog migrate` and `actionlog distribute`",
        f"- each figure: median of {RUNS} rounds of {SECONDS} s, targets round-robin; wrk over "
        "loopback from another process",
        "",
        "| target | no-op req/s | single POST ev/s | of PostgreSQL | batch (100) ev/s "
        "| of PostgreSQL |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, f in results.items():
        lines.append(
            f"| {name} | {f['noop']:,.0f} | {f['single']:,.0f} | "
            f"{f['single'] / plain['single']:.2f}x | {f['batch']:,.0f} | "
            f"{f['batch'] / plain['batch']:.2f}x |"
        )
    lines += ["", "<!-- end -->", ""]
    return "\n".join(lines)


def main() -> None:
    reason = citus.available()
    if reason:
        raise SystemExit(reason)
    started = time.perf_counter()
    cluster = citus.CitusCluster()
    plain = PlainNode(cluster.root, "plain")
    servers: dict[str, tuple[subprocess.Popen[bytes], str, str]] = {}
    try:
        cluster.start()
        plain.init()
        plain.start()
        targets = {"PostgreSQL": (plain.dsn(), ROOT), "Citus": (None, ROOT)}
        if BASELINE:
            targets["PostgreSQL, baseline source"] = (plain.dsn(), Path(BASELINE))
        for name, (dsn, source) in targets.items():
            database = "bench_" + re.sub(r"\W+", "_", name.lower())
            if dsn is None:
                url = asyncio.run(cluster.create_database(database))
            else:
                asyncio.run(create_database(dsn, database))
                url = plain.dsn(database).replace("postgresql://", "postgresql+asyncpg://", 1)
            run_actionlog(url, "migrate", source=source)
            if dsn is None:
                run_actionlog(url, "distribute", source=source)
            key = json.loads(run_actionlog(url, "tenant", "create", name, "--json", source=source))
            process, base = serve(url, source)
            servers[name] = (process, base, key["api_key"])
            print(f"{name}: serving at {base}", flush=True)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        for number in range(RUNS):
            for name, (_process, base, key) in servers.items():
                rounds[name].append(measure(base, key))
                print(f"round {number + 1} {name}: {rounds[name][-1]}", flush=True)
        results = {
            name: {m: statistics.median(r[m] for r in runs) for m in runs[0]}
            for name, runs in rounds.items()
        }
        section = render(results, (time.perf_counter() - started) / 60)
        print(section)
        report.write_section("citus", section)
    finally:
        for process, _base, _key in servers.values():
            process.terminate()
            process.wait(timeout=30)
        plain.stop()
        cluster.stop()


if __name__ == "__main__":
    main()
