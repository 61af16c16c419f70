"""Spans per second through `POST /v1/traces`, beside `POST /api/v1/logs/actions/batch` of the
same rows, in one run.

A fresh PostgreSQL database (`BENCH_PG`'s server; `BENCH_DB=sqlite` for a SQLite file), one
tenant, and `actionlog serve` (2 workers on PostgreSQL, 1 on SQLite). Bodies are built before
the clock starts: OTLP protobuf export requests of 512 GenAI-like spans each (the OpenTelemetry
SDK's default batch: a chat span with model, tokens, messages and an event, under a trace of 8
spans), and the JSON batches of the very actions those spans map to — with their ids, as the
receiver records them (so both write through the client-id path), and once without ids (the
plain batch). Every body holds new spans, so nothing is a replay.

Each figure is rows committed per second over BENCH_SECONDS with BENCH_CONCURRENCY requests in
flight (httpx, one process), taken round-robin for BENCH_RUNS rounds; the medians are written
to the "OpenTelemetry in" section of RESULTS.md, the receiver's as a ratio to the batch route
measured in the same rounds (the limit: the same rows through the plain recording path).

Run: .venv/bin/python bench/otel.py   (BENCH_RESULTS to write elsewhere)
"""

import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))
import report  # noqa: E402

from app.actions.schemas import ActionCreate  # noqa: E402
from app.otel.mapping import Resource, span_action  # noqa: E402

SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SQLITE = os.environ.get("BENCH_DB", "postgresql") == "sqlite"
RUNS = int(os.environ.get("BENCH_RUNS", "2"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))
BATCH = 512
DB_NAME = "actionlog_bench_otel"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
BIN = Path(sys.executable).parent
SECTION = "otel-in-sqlite" if SQLITE else "otel-in"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def sql(statement: str) -> None:
    connection = await asyncpg.connect(SERVER)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def database_url(directory: Path) -> str:
    if SQLITE:
        return f"sqlite+aiosqlite:///{directory / 'bench.db'}"
    asyncio.run(sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))
    asyncio.run(sql(f"CREATE DATABASE {DB_NAME}"))
    dsn = SERVER.rsplit("/", 1)[0] + "/" + DB_NAME
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


def environment(url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "ADMIN_TOKEN": ADMIN_TOKEN, "LOG_LEVEL": "warning"}


def actionlog(url: str, *args: str) -> str:
    done = subprocess.run([str(BIN / "actionlog"), *args], env=environment(url), cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"actionlog {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def serve(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    workers = "1" if SQLITE else "2"
    process = subprocess.Popen(
        [str(BIN / "actionlog"), "serve", "--workers", workers, "--port", str(port)],
        env=environment(url),
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


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


MESSAGES = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "x" * 120}]}])


def spans(rng: random.Random, n: int) -> list[Span]:
    """n spans in traces of 8: an invoke_agent root and 7 chat or tool children."""
    out = []
    now = time.time_ns()
    for i in range(n):
        if i % 8 == 0:
            trace_id, root_id = rng.randbytes(16), rng.randbytes(8)
        start = now - rng.randrange(10**9, 60 * 10**9)
        span = Span(
            trace_id=trace_id,
            span_id=root_id if i % 8 == 0 else rng.randbytes(8),
            parent_span_id=b"" if i % 8 == 0 else root_id,
            name="invoke_agent support" if i % 8 == 0 else f"chat gpt-4o-{i % 3}",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=start,
            end_time_unix_nano=start + rng.randrange(10**6, 3 * 10**9),
            attributes=[
                _kv("gen_ai.operation.name", "invoke_agent" if i % 8 == 0 else "chat"),
                _kv("gen_ai.provider.name", "openai"),
                _kv("gen_ai.request.model", f"gpt-4o-{i % 3}"),
                _kv("gen_ai.usage.input_tokens", rng.randrange(10, 4000)),
                _kv("gen_ai.usage.output_tokens", rng.randrange(1, 800)),
                _kv("gen_ai.input.messages", MESSAGES),
                _kv("enduser.id", f"user-{rng.randrange(500)}"),
                _kv("session.id", f"s-{rng.randrange(5000)}"),
            ],
            events=[Span.Event(name="gen_ai.choice", time_unix_nano=start + 10**6,
                               attributes=[_kv("finish_reason", "stop")])],
        )  # fmt: skip
        if rng.random() < 0.05:
            span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="rate limited"))
        out.append(span)
    return out


RESOURCE = [_kv("service.name", "support-agent"), _kv("deployment.environment", "bench")]


def trace_body(batch: list[Span]) -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={"attributes": RESOURCE},
                scope_spans=[ScopeSpans(scope={"name": "bench"}, spans=batch)],
            )
        ]
    )
    return request.SerializeToString()


def batch_body(batch: list[Span], with_ids: bool) -> bytes:
    resource = Resource({"service.name": "support-agent", "deployment.environment": "bench"},
                        {"name": "bench"})  # fmt: skip
    items = []
    for span in batch:
        item = ActionCreate.model_validate(span_action(span, resource))
        body = item.model_dump(mode="json", exclude_none=True)
        if not with_ids:
            body.pop("id")
        items.append(body)
    return json.dumps(items).encode()


KINDS = {
    "/v1/traces (protobuf)": ("/v1/traces", "application/x-protobuf"),
    "/actions/batch, same rows with their ids": ("/api/v1/logs/actions/batch", "application/json"),
    "/actions/batch, same rows without ids": ("/api/v1/logs/actions/batch", "application/json"),
}


def bodies(kind: str, rng: random.Random, count: int) -> list[bytes]:
    made = []
    for _ in range(count):
        batch = spans(rng, BATCH)
        if kind.startswith("/v1/traces"):
            made.append(trace_body(batch))
        else:
            made.append(batch_body(batch, with_ids="with their ids" in kind))
    return made


async def drive(base: str, key: str, kind: str, prepared: list[bytes]) -> float:
    """Rows committed per second, CONCURRENCY requests in flight, for up to SECONDS."""
    path, content_type = KINDS[kind]
    headers = {"X-API-Key": key, "Content-Type": content_type}
    queue = list(reversed(prepared))
    done = 0
    loop = asyncio.get_running_loop()
    stop = loop.time() + SECONDS

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal done
        while queue and loop.time() < stop:
            response = await http.post(path, content=queue.pop(), headers=headers)
            if response.status_code not in (200, 201) or b"rejected" in response.content:
                raise SystemExit(f"{kind}: {response.status_code} {response.text[:300]}")
            done += BATCH

    started = loop.time()
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        await asyncio.gather(*(worker(http) for _ in range(CONCURRENCY)))
    return done / (loop.time() - started)


def render(figures: dict[str, list[float]], minutes: float) -> str:
    medians = {kind: statistics.median(values) for kind, values in figures.items()}
    limit = medians["/actions/batch, same rows with their ids"]
    engine = "SQLite, 1 worker" if SQLITE else "PostgreSQL, 2 workers"
    lines = [
        f"<!-- section: {SECTION} -->",
        f"## OpenTelemetry in: spans through `/v1/traces` (`bench/otel.py`), {engine}",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; whole run {minutes:.1f} min",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f} at the end (other "
        "work on the machine makes single figures noisy); the load from httpx in the bench "
        "process, "
        f"{CONCURRENCY} requests in flight, {BATCH} spans (or actions) per request",
        f"- each figure: median of {RUNS} rounds of {SECONDS:.0f} s, kinds taken round-robin; "
        "rows committed per second",
        "",
        "| path | rows/s | of the batch route with ids |",
        "| --- | --- | --- |",
    ]
    for kind, value in medians.items():
        lines.append(f"| {kind} | {value:,.0f} | {value / limit:.0%} |")
    lines += ["", "<!-- end -->", ""]
    return "\n".join(lines)


def main() -> None:
    started = time.perf_counter()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as directory:
        url = database_url(Path(directory))
        actionlog(url, "migrate")
        tenant = json.loads(actionlog(url, "tenant", "create", "Bench OTLP", "--json"))
        process, base = serve(url)
        figures: dict[str, list[float]] = {kind: [] for kind in KINDS}
        try:
            count = int(os.environ.get("BENCH_BODIES", "60"))
            for run in range(RUNS):
                for kind in KINDS:
                    prepared = bodies(kind, rng, count)
                    rate = asyncio.run(drive(base, tenant["api_key"], kind, prepared))
                    figures[kind].append(rate)
                    print(f"round {run + 1}: {kind}: {rate:,.0f} rows/s", flush=True)
        finally:
            process.terminate()
            process.wait(30)
            if not SQLITE:
                asyncio.run(sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))
    section = render(figures, (time.perf_counter() - started) / 60)
    report.write_section(SECTION, section)
    print(section)


if __name__ == "__main__":
    main()
