"""Stream benchmark: what live subscribers cost single-event ingest, and delivery latency.

Creates a fresh PostgreSQL database, starts `actionlog serve --workers 2` as a user would and
measures, in one run:

1. single-event `POST /api/v1/logs/actions` throughput (wrk, 64 connections, `lua/post_one.lua`)
   with no stream open and with 10 SSE subscribers connected, in alternating order over
   BENCH_RUNS rounds of BENCH_SECONDS each; the subscribers run in a separate process and
   check that each of them received every event;
2. the delivery latency from the 201 of a POST to the arrival of its event at a subscriber,
   with the 10 subscribers connected, once on an idle service (one POST at a time) and once
   while wrk keeps 64 connections of POSTs going.

With BENCH_BASELINE_BIN set to the bin/ of another installation (an editable install of a
version without the stream, say), each round also measures that version's ingest on a
database of its own: the cost of numbering and storing the events themselves.

The cost figures are medians of per-round ratios of adjacent measurements, which hold up
better than a ratio of medians on a shared machine.

Writes bench/STREAM_RESULTS.md. Run: `.venv/bin/python bench/stream.py` (needs wrk).
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).parent))
import wrk

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = "actionlog_stream_bench"
PORT = int(os.environ.get("BENCH_PORT", "8766"))
BASE = f"http://127.0.0.1:{PORT}"
BIN = Path(sys.executable).parent
BASELINE_BIN = os.environ.get("BENCH_BASELINE_BIN")
BASELINE_PORT = PORT + 1
HERE = Path(__file__).parent
SUBSCRIBERS = 10
LATENCY_POSTS = 300


def service_env(database: str = DB_NAME) -> dict[str, str]:
    url = SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return {**os.environ, "DATABASE_URL": f"{url}/{database}", "LOG_LEVEL": "warning",
            "STREAM_MAX_PER_KEY": "50"}  # fmt: skip


def actionlog(*args: str, bin_dir: Path = BIN, database: str = DB_NAME) -> str:
    done = subprocess.run(
        [str(bin_dir / "actionlog"), *args],
        env=service_env(database),
        capture_output=True,
        text=True,
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


# Subscribers: `bench/stream.py subscribers KEY N` reads N streams until stdin closes.


async def _read_stream(key: str, counts: list[int], index: int, ready: asyncio.Event,
                       opened: list[int]) -> None:  # fmt: skip
    async with (
        httpx.AsyncClient(base_url=BASE, timeout=None) as http,
        http.stream("GET", "/api/v1/logs/stream", headers={"X-API-Key": key}) as response,
    ):
        response.raise_for_status()
        opened[0] += 1
        if opened[0] == len(counts):
            ready.set()
        tail = b"\n"
        async for chunk in response.aiter_raw():  # frames are counted, not parsed: cheap
            data = tail + chunk
            counts[index] += data.count(b"\nid: ")
            tail = data[-4:]


async def subscribers(key: str, n: int) -> None:
    counts, opened, ready = [0] * n, [0], asyncio.Event()
    tasks = [asyncio.create_task(_read_stream(key, counts, i, ready, opened)) for i in range(n)]
    await ready.wait()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await asyncio.sleep(1.0)  # let the last events arrive
    for task in tasks:
        task.cancel()
    print(json.dumps(counts), flush=True)


class Subscribers:
    def __init__(self, key: str, n: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "subscribers", key, str(n)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"subscribers did not start: {line!r}")

    def stop(self) -> list[int]:
        out, _ = self.process.communicate("", timeout=60)
        return list(json.loads(out.strip().splitlines()[-1]))


# Latency: one subscriber here, POSTs one at a time.


async def latency(key: str, posts: int, pause: float) -> list[float]:
    arrived: dict[str, float] = {}
    ready = asyncio.Event()

    async def read() -> None:
        async with (
            httpx.AsyncClient(base_url=BASE, timeout=None) as http,
            http.stream("GET", "/api/v1/logs/stream", headers={"X-API-Key": key},
                        params={"action_type": "latency_probe"}) as response,
        ):  # fmt: skip
            ready.set()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    arrived[json.loads(line[5:])["id"]] = time.perf_counter()

    reader = asyncio.create_task(read())
    await ready.wait()
    await asyncio.sleep(0.5)
    answered: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=BASE, headers={"X-API-Key": key}) as http:
        for n in range(posts):
            response = await http.post(
                "/api/v1/logs/actions", json={"action_type": "latency_probe", "action_name": str(n)}
            )
            answered[response.json()["id"]] = time.perf_counter()
            await asyncio.sleep(pause)
    await asyncio.sleep(1.0)
    reader.cancel()
    missing = set(answered) - set(arrived)
    if missing:
        print(f"  ! {len(missing)} probe events never arrived")
    return sorted((arrived[i] - answered[i]) * 1000 for i in answered if i in arrived)


def serve(bin_dir: Path, port: int, database: str) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [str(bin_dir / "actionlog"), "serve", "--port", str(port), "--workers", "2"],
        env=service_env(database), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(1200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    server.wait(30)
    raise SystemExit(f"actionlog serve on {port} did not start")


def ingest(base_url: str, key: str) -> float:
    result = wrk.run(base_url, "post_one.lua", key=key, path="/api/v1/logs/actions",
                     seconds=SECONDS)  # fmt: skip
    return result.requests_per_s


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]


def main() -> None:
    databases = [DB_NAME] + ([f"{DB_NAME}_baseline"] if BASELINE_BIN else [])
    for database in databases:
        asyncio.run(admin_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        asyncio.run(admin_sql(f"CREATE DATABASE {database}"))
    actionlog("migrate")
    key = json.loads(actionlog("tenant", "create", "Stream bench", "--json"))["api_key"]
    servers: list[subprocess.Popen[bytes]] = []
    baseline_key = ""
    baseline_url = f"http://127.0.0.1:{BASELINE_PORT}"
    try:  # whatever fails, the servers started are stopped and the databases dropped
        servers.append(serve(BIN, PORT, DB_NAME))
        if BASELINE_BIN:
            other = Path(BASELINE_BIN)
            actionlog("migrate", bin_dir=other, database=databases[1])
            created = actionlog("tenant", "create", "Base", "--json", bin_dir=other,
                                database=databases[1])  # fmt: skip
            baseline_key = json.loads(created)["api_key"]
            servers.append(serve(other, BASELINE_PORT, databases[1]))
        wrk.run(BASE, "post_one.lua", key=key, path="/api/v1/logs/actions", seconds=3)  # warm-up
        without: list[float] = []
        with_: list[float] = []
        baseline: list[float] = []
        checks: list[str] = []
        for round_ in range(RUNS):
            order = ("none", "subscribed", "baseline")
            for step in order if round_ % 2 == 0 else tuple(reversed(order)):
                if step == "none":
                    without.append(ingest(BASE, key))
                elif step == "baseline" and BASELINE_BIN:
                    baseline.append(ingest(baseline_url, baseline_key))
                elif step == "subscribed":
                    group = Subscribers(key, SUBSCRIBERS)
                    with_.append(ingest(BASE, key))
                    counts = group.stop()
                    expected = round(with_[-1] * SECONDS)
                    checks.append(f"{min(counts)}..{max(counts)} events per subscriber "
                                  f"(wrk: ~{expected} requests)")  # fmt: skip
            print(
                f"round {round_ + 1}: {without[-1]:,.0f} ev/s without, {with_[-1]:,.0f} with "
                f"{SUBSCRIBERS} subscribers"
                + (f", baseline {baseline[-1]:,.0f}" if baseline else "")
                + f"; {checks[-1]}",
                flush=True,
            )

        group = Subscribers(key, SUBSCRIBERS - 1)
        idle = asyncio.run(latency(key, LATENCY_POSTS, 0.02))
        load: dict[str, Any] = {}

        def background() -> None:
            load["wrk"] = wrk.run(BASE, "post_one.lua", key=key, path="/api/v1/logs/actions",
                                  seconds=SECONDS + 4)  # fmt: skip

        thread = threading.Thread(target=background)
        thread.start()
        time.sleep(1.0)
        loaded = asyncio.run(latency(key, LATENCY_POSTS // 2, 0.02))
        thread.join()
        group.stop()
    finally:
        for server in servers:
            server.terminate()
            server.wait(30)
        for database in databases:
            asyncio.run(admin_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))

    base, subscribed = statistics.median(without), statistics.median(with_)
    cost = statistics.median((a - b) / a * 100 for a, b in zip(without, with_, strict=True))
    recording = (
        statistics.median((b - a) / b * 100 for a, b in zip(without, baseline, strict=True))
        if baseline
        else None
    )
    lines = [
        "# Stream benchmark (bench/stream.py)",
        "",
        f"`actionlog serve --workers 2` on PostgreSQL, {os.cpu_count()} cores; wrk 64 connections "
        f"POST one action; {RUNS} rounds of {SECONDS} s, medians.",
        "",
        "| measurement | figure |",
        "| --- | --- |",
        f"| single-event ingest, no stream open | {base:,.0f} ev/s |",
        f"| single-event ingest, {SUBSCRIBERS} SSE subscribers | {subscribed:,.0f} ev/s |",
        f"| cost of the subscribers (median of paired rounds) | {cost:.1f} % (target <= 10 %) |",
        f"| 201 → event, idle (one POST at a time, {len(idle)} probes) | "
        f"p50 {pct(idle, 50):.1f} ms, p99 {pct(idle, 99):.1f} ms |",
        f"| 201 → event, under 64-connection ingest ({len(loaded)} probes) | p50 "
        f"{pct(loaded, 50):.1f} ms, p99 {pct(loaded, 99):.1f} ms |",
        f"| ingest meanwhile | {load['wrk'].requests_per_s:,.0f} ev/s |",
        *(
            [
                f"| the version without the stream ({BASELINE_BIN}) | "
                f"{statistics.median(baseline):,.0f} ev/s |",
                f"| cost of numbering and storing events | {recording:.1f} % |",
            ]
            if recording is not None
            else []
        ),
        "",
        "Rounds (without / with): "
        + ", ".join(f"{a:,.0f} / {b:,.0f}" for a, b in zip(without, with_, strict=True)),
        "",
        "Delivery checks: " + "; ".join(checks),
        "",
    ]
    (HERE / "STREAM_RESULTS.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "subscribers":
        asyncio.run(subscribers(sys.argv[2], int(sys.argv[3])))
    else:
        main()
