"""What `ActionLogMiddleware` costs a request: a no-op app with and without it, same run.

    .venv/bin/python bench/middleware.py        # BENCH_RUNS (3) rounds of BENCH_SECONDS (10)
    BENCH_BATCH=1000 .venv/bin/python bench/middleware.py   # the apps' logger batch_size

1. starts `actionlog serve` on a temporary SQLite database (the logger's destination, so
   events are really delivered while the app is measured) and creates a tenant;
2. serves the same no-op FastAPI app twice with uvicorn (1 worker each, uvloop, httptools, no
   access log): once plain, once wrapped in `ActionLogMiddleware` with an `ActionLogger`;
3. drives each with wrk (64 connections, 2 threads), alternating plain and logged, and
   reports the medians: requests/s and p50/p99 of both, and the per-request cost implied;
   a third app logs to a sink (an HTTP server answering 201 to every batch without storing
   anything), which separates the client's own cost from the service's CPU on this machine;
4. measures in-process, without HTTP, the cost of one enqueue (`logger.log`) and of the
   middleware around a bare ASGI app, in microseconds per request;
5. checks that every logged request reached the service (`sent` / `dropped` of the app's
   logger, read from the app after the runs).

The machine's 2 cores are shared by wrk, the app and the service: the logged app's
background thread (JSON encoding and HTTP sends) competes with request handling for the GIL
and for the cores, which is part of what the middleware costs and is measured here.
"""

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import wrk  # bench/ is on the path: as the script's directory, or PYTHONPATH for uvicorn

BIN = Path(sys.executable).parent
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ADMIN = "bench-admin-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not become ready")


def app() -> Any:
    """The app under test (uvicorn factory); BENCH_MIDDLEWARE=on wraps it."""
    from fastapi import FastAPI

    api = FastAPI()

    @api.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    if os.environ.get("BENCH_MIDDLEWARE") != "on":
        return api
    from actionlog_client import ActionLogger, ActionLogMiddleware

    logger = ActionLogger(
        os.environ["BENCH_URL"],
        os.environ["BENCH_KEY"],
        max_queue=100_000,
        batch_size=int(os.environ.get("BENCH_BATCH", "100")),
    )

    @api.get("/_stats")
    async def stats() -> dict[str, int]:
        logger.flush(30)
        return dict(logger.stats())

    return ActionLogMiddleware(api, logger, skip_paths=("/_stats",), service="bench")


async def sink(scope: Any, receive: Any, send: Any) -> None:
    """An HTTP peer that takes every batch and stores nothing (uvicorn `middleware:sink`)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})


def serve_sink() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        str(BIN / "uvicorn"), "middleware:sink", "--port", str(port), "--workers", "1",
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    process = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, process)
    return process, base


def serve_app(middleware: bool, url: str, key: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "BENCH_MIDDLEWARE": "on" if middleware else "off",
        "BENCH_URL": url,
        "BENCH_KEY": key,
        "PYTHONPATH": str(Path(__file__).parent),
    }
    command = [
        str(BIN / "uvicorn"), "middleware:app", "--factory", "--port", str(port),
        "--workers", "1", "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/items/1", process)
    return process, base


def in_process(url: str, key: str, n: int = 20_000) -> dict[str, float]:
    """Microseconds per call, measured in this process without HTTP in front:

    - `enqueue_us`: one `logger.log(...)` (wall time of the caller);
    - `bare_us` / `wrapped_us`: a bare ASGI app called directly, without and with the
      middleware (the request path's cost);
    - `cpu_per_event_us`: this process's CPU time (`time.process_time`, so other load on the
      machine does not count) per request through the middleware, including the worker
      thread's encoding and sending until everything is acknowledged by `url`.
    """
    from actionlog_client import ActionLogger, ActionLogMiddleware

    logger = ActionLogger(url, key, max_queue=200_000)
    started = time.perf_counter()
    for i in range(n):
        logger.log("bench_enqueue", metadata={"i": i})
    enqueue_us = (time.perf_counter() - started) / n * 1e6
    logger.flush(60)

    async def noop(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    wrapped = ActionLogMiddleware(noop, logger)
    scope = {
        "type": "http", "method": "GET", "path": "/items/1", "root_path": "",
        "headers": [(b"user-agent", b"bench"), (b"x-request-id", b"r-1")],
        "client": ("127.0.0.1", 5000),
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    async def per_request(target: Any) -> float:
        begin = time.perf_counter()
        for _ in range(n):
            await target(dict(scope), receive, send)
        return (time.perf_counter() - begin) / n * 1e6

    plain_us = asyncio.run(per_request(noop))
    cpu = time.process_time()
    logged_us = asyncio.run(per_request(wrapped))
    delivered = logger.flush(60)
    cpu_per_event = (time.process_time() - cpu) / n * 1e6
    stats = logger.stats()
    logger.close(5)
    return {
        "enqueue_us": enqueue_us,
        "bare_us": plain_us,
        "wrapped_us": logged_us,
        "cpu_per_event_us": cpu_per_event,
        "delivered": float(delivered and stats["dropped"] == 0),
    }


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk (make bench installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="actionlog-mw-"))
    port = free_port()
    service_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        "ADMIN_TOKEN": ADMIN,
        "LOG_LEVEL": "warning",
    }
    command = [str(BIN / "actionlog"), "serve", "--port", str(port), "--workers", "1"]
    service = subprocess.Popen(command, env=env, cwd=workdir)
    apps: list[subprocess.Popen[bytes]] = []
    try:
        wait_ready(f"{service_url}/ready", service)
        tenant = httpx.post(
            f"{service_url}/api/v1/admin/tenants",
            json={"name": "bench"},
            headers={"X-Admin-Token": ADMIN},
        ).json()
        key = tenant["api_key"]
        sink_server, sink_url = serve_sink()
        plain_app, plain_url = serve_app(False, service_url, key)
        logged_app, logged_url = serve_app(True, service_url, key)
        sunk_app, sunk_url = serve_app(True, sink_url, key)
        apps = [sink_server, plain_app, logged_app, sunk_app]
        targets = (("plain", plain_url), ("logged", logged_url), ("to sink", sunk_url))
        rounds: list[dict[str, wrk.WrkResult]] = []
        for _ in range(RUNS):
            rounds.append(
                {
                    name: wrk.run(url, "get.lua", path="/items/1", seconds=SECONDS)
                    for name, url in targets
                }
            )
        stats = httpx.get(f"{logged_url}/_stats", timeout=60).json()
        micro = in_process(service_url, key)
        sunk = in_process(sink_url, key)
    finally:
        for process in [*apps, service]:
            process.terminate()
            process.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)
    report(rounds, stats, micro, sunk)


def report(
    rounds: list[dict[str, wrk.WrkResult]],
    stats: dict[str, int],
    micro: dict[str, float],
    sunk: dict[str, float],
) -> None:
    def median(name: str, field: str) -> float:
        return float(statistics.median(getattr(r[name], field) for r in rounds))

    plain = median("plain", "requests_per_s")
    print(f"\n{RUNS} rounds of {SECONDS} s, wrk 64 connections, medians\n")
    print("| app | requests/s | of plain | implied cost per request | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in ("plain", "logged", "to sink"):
        rps = median(name, "requests_per_s")
        p50, p99 = median(name, "p50_ms"), median(name, "p99_ms")
        cost = "" if name == "plain" else f"{1e6 / rps - 1e6 / plain:.1f} µs"
        print(f"| {name} | {rps:,.0f} | {rps / plain:.1%} | {cost} | {p50:.2f} | {p99:.2f} |")
    print(
        f"app logger after the runs: sent {stats['sent']:,}, dropped {stats['dropped']:,}, "
        f"rejected {stats['rejected']:,}, retried {stats['retried']:,}"
    )
    for name, m in (("to the service", micro), ("to the sink", sunk)):
        print(
            f"in process, {name}: one enqueue {m['enqueue_us']:.1f} µs; bare ASGI app "
            f"{m['bare_us']:.1f} µs, with the middleware {m['wrapped_us']:.1f} µs "
            f"(+{m['wrapped_us'] - m['bare_us']:.1f} µs); client CPU per request, sending "
            f"included: {m['cpu_per_event_us']:.1f} µs; all delivered: {bool(m['delivered'])}"
        )


if __name__ == "__main__":
    main()
