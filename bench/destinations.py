"""Destinations benchmark: delivery rate to http and s3 while ingest runs, and what three
active destinations cost single-event ingest.

Creates a fresh PostgreSQL database, starts `actionlog serve --workers 2` as a user would, a
webhook receiver (uvicorn, in a thread of this process) and an S3 server (moto, a process),
and measures, in one run (BENCH_RUNS rounds, default 1, of BENCH_SECONDS each):

1. single-event `POST /api/v1/logs/actions` (wrk, 64 connections, `lua/post_one.lua`) with no
   destination: the limit the cost is measured against;
2. the same with three active destinations created just before (http, splunk_hec to the
   same receiver, and s3 with gzipped NDJSON); while wrk runs, the rate at which
   `delivered_through` of the http and s3 destinations moves (records delivered per second,
   beside the ingest rate), then the time until every record has arrived after wrk stops.
   The destinations are deleted after the round, so the next round starts without them.

The receiver and moto share the machine's cores with the service and wrk, as a receiver on
the same host would. Appends its figures to bench/RESULTS.md.
Run: `.venv/bin/python bench/destinations.py` (needs wrk).
"""

import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).parent))
import wrk

RUNS = int(os.environ.get("BENCH_RUNS", "1"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = "actionlog_destinations_bench"
PORT = int(os.environ.get("BENCH_PORT", "8768"))
BASE = f"http://127.0.0.1:{PORT}"
BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
# The three destinations of the cost figure (names of CONFIGS below); the http and s3 delivery
# rates are read from those present.
CHOSEN = os.environ.get("BENCH_DESTINATIONS", "http,splunk,s3").split(",")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env() -> dict[str, str]:
    url = SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return {**os.environ, "DATABASE_URL": f"{url}/{DB_NAME}", "LOG_LEVEL": "warning",
            "WEBHOOK_ALLOW_PRIVATE": "true", "ALERTS_ENABLED": "false"}  # fmt: skip


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


class Receiver:
    """Counts the records that webhook and HEC requests carry (by their `stream_id` keys)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.records: dict[str, int] = {}
        config = uvicorn.Config(self, host="127.0.0.1", port=self.port, log_level="error",
                                lifespan="off")  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        self.records[path] = self.records.get(path, 0) + body.count(b'"stream_id":')
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    moto = shutil.which("moto_server") or str(BIN / "moto_server")
    process = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url + "/moto-api/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    import boto3

    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="b",
                 aws_secret_access_key="b").create_bucket(Bucket="bench")  # fmt: skip
    return process, url


def serve() -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [str(BIN / "actionlog"), "serve", "--port", str(PORT), "--workers", "2"],
        env=service_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(1200):
        try:
            if httpx.get(f"{BASE}/ready").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("actionlog serve did not start")


def ingest(key: str) -> float:
    return wrk.run(BASE, "post_one.lua", key=key, path="/api/v1/logs/actions",
                   seconds=SECONDS).requests_per_s  # fmt: skip


def destinations(http: httpx.Client) -> dict[str, Any]:
    return {d["name"]: d for d in http.get("/api/v1/destinations").json()}


def with_destinations(http: httpx.Client, key: str, receiver: Receiver, s3: str) -> dict[str, Any]:
    configs = {
        "http": ("http", {"url": f"http://127.0.0.1:{receiver.port}/hook"}),
        "splunk": ("splunk_hec", {"url": f"http://127.0.0.1:{receiver.port}", "token": "t"}),
        "s3": ("s3", {"bucket": "bench", "endpoint_url": s3, "region": "us-east-1",
                      "access_key_id": "b", "secret_access_key": "b"}),
    }  # fmt: skip
    configs["datadog"] = ("datadog", {"url": f"http://127.0.0.1:{receiver.port}", "api_key": "k"})
    ids = []
    for name in CHOSEN:
        kind, config = configs[name]
        response = http.post("/api/v1/destinations",
                             json={"name": name, "type": kind, "config": config})  # fmt: skip
        response.raise_for_status()
        ids.append(response.json()["id"])
    time.sleep(2.5)  # the workers' scans find them and take their leases
    start = destinations(http)
    began = time.monotonic()
    rate = ingest(key)
    during = time.monotonic() - began
    end = destinations(http)
    head = max(d["delivered_through"] + d["lag_events"] for d in end.values())
    caught = time.monotonic()
    while min(d["delivered_through"] for d in destinations(http).values()) < head:
        time.sleep(0.1)
    catch_up = time.monotonic() - caught
    moved = {n: end[n]["delivered_through"] - start[n]["delivered_through"] for n in end}
    for destination_id in ids:
        http.delete(f"/api/v1/destinations/{destination_id}").raise_for_status()
    return {
        "ingest": rate,
        "http": moved.get("http", 0) / during,
        "s3": moved.get("s3", 0) / during,
        "lag_at_end": {n: end[n]["lag_events"] for n in end},
        "catch_up_s": catch_up,
    }


def main() -> None:
    asyncio.run(admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))
    asyncio.run(admin_sql(f"CREATE DATABASE {DB_NAME}"))
    actionlog("migrate")
    key = json.loads(actionlog("tenant", "create", "Destinations bench", "--json"))["api_key"]
    receiver = Receiver()
    moto, s3 = start_moto()
    server = serve()
    without: list[float] = []
    rounds: list[dict[str, Any]] = []
    try:
        with httpx.Client(base_url=BASE, headers={"X-API-Key": key}, timeout=60) as http:
            wrk.run(BASE, "post_one.lua", key=key, path="/api/v1/logs/actions", seconds=3)
            for round_ in range(RUNS):
                steps = ("none", "with") if round_ % 2 == 0 else ("with", "none")
                for step in steps:
                    if step == "none":
                        without.append(ingest(key))
                    else:
                        rounds.append(with_destinations(http, key, receiver, s3))
                print(f"round {round_ + 1}: {without[-1]:,.0f} ev/s without, "
                      f"{json.dumps(rounds[-1])}", flush=True)  # fmt: skip
    finally:
        server.terminate()
        server.wait(30)
        moto.terminate()
        moto.wait(30)
        receiver.stop()
        asyncio.run(admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))

    load = os.getloadavg()[1]  # other work on the machine moves these figures a lot
    base = statistics.median(without)
    with_ = statistics.median(r["ingest"] for r in rounds)
    cost = statistics.median(
        (a - r["ingest"]) / a * 100 for a, r in zip(without, rounds, strict=True)
    )
    http_rate = statistics.median(r["http"] for r in rounds)
    s3_rate = statistics.median(r["s3"] for r in rounds)
    lines = [
        "",
        f"## Destinations (bench/destinations.py), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"`actionlog serve --workers 2` on PostgreSQL, {os.cpu_count()} cores shared with the "
        f"receivers (uvicorn, moto) and wrk; wrk 64 connections POST one action; {RUNS} round(s) "
        f"of {SECONDS} s. Load average (5 min) at the end: {load:.1f}.",
        "",
        "| measurement | figure | ratio |",
        "| --- | --- | --- |",
        f"| single-event ingest, no destination (the limit) | {base:,.0f} ev/s | 1.00 |",
        f"| single-event ingest, active destinations: {', '.join(CHOSEN)} | {with_:,.0f} ev/s "
        f"| {with_ / base:.2f} |",
        f"| cost of the {len(CHOSEN)} destinations (target <= 10 %) | {cost:.1f} % | |",
        f"| delivered to http while ingest runs | {http_rate:,.0f} records/s | "
        f"{http_rate / with_:.2f} of ingest |",
        *(
            [
                f"| delivered to s3 (NDJSON.gz) while ingest runs | {s3_rate:,.0f} records/s | "
                f"{s3_rate / with_:.2f} of ingest |"
            ]
            if "s3" in CHOSEN
            else []
        ),
        f"| behind when ingest stopped (events) | "
        f"{', '.join(f'{k} {v:,}' for k, v in rounds[-1]['lag_at_end'].items())} | |",
        f"| caught up after ingest stopped | {rounds[-1]['catch_up_s']:.1f} s | |",
        "",
        "Rounds (ingest without / with, ev/s): "
        + ", ".join(f"{a:,.0f} / {r['ingest']:,.0f}" for a, r in zip(without, rounds, strict=True)),
        "",
    ]
    with (HERE / "RESULTS.md").open("a") as results:
        results.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
