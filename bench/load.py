"""Benchmark data: generated actions, and the engines' own bulk-write limits.

Rows are generated lazily and written in chunks (COPY over asyncpg on PostgreSQL, `sqlite3`
executemany on SQLite), so a load of any size holds a few chunks in memory, never the set:
10M rows take the time they take, not the memory.

Shapes (`BENCH_SHAPE`): `spread` puts half of the rows in one tenant and spreads every row
over 30 days; `burst` gives one tenant BURST_ROWS rows that all arrived in the last hour
(a busy application's recent burst) and spreads the rest over the other tenants and 30 days.
"""

import asyncio
import itertools
import json
import random
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from app.core.db import new_id

CHUNK = 50_000
COLUMNS = [
    "id", "tenant_id", "action_type", "action_name", "provider_name", "service", "source",
    "user_id", "session_id", "correlation_id", "parent_id", "status", "request_payload",
    "response_data", "metadata", "steps", "error_message", "error_type", "execution_time_ms",
    "started_at", "completed_at", "ip_address", "user_agent", "created_at", "updated_at",
]  # fmt: skip

# (action_type, provider, service, source, typical ms)
KINDS = [
    ("crm_create", "hubspot", "CrmAdapter", "api", 240),
    ("crm_update", "hubspot", "CrmAdapter", "api", 180),
    ("crm_search", "hubspot", "CrmAdapter", "api", 120),
    ("helpdesk_create_ticket", "zendesk", "HelpdeskAdapter", "api", 320),
    ("calendar_create_event", "google", "CalendarAdapter", "api", 150),
    ("email_send", "sendgrid", "EmailAdapter", "api", 90),
    ("job_execution", None, "Scheduler", "scheduled_job", 4200),
    ("s3_export", "s3", "ExportService", "ui_button", 1800),
    ("ai_remediation", "openai", "DecisionEngine", "ai_agent", 2500),
]
ERRORS = [
    ("RateLimitError", "HubSpot API rate limit exceeded (429), retry after 10 s"),
    ("TimeoutError", "Upstream did not answer within 10000 ms"),
    ("ClientError", "Access Denied for bucket review-exports"),
]


def _payload(rng: random.Random, n: int) -> str:
    return json.dumps(
        {
            "email": f"contact{n}@example.com",
            "firstname": "Ada",
            "lastname": "Lovelace",
            "company": "Analytical Engines Ltd",
            "phone": "+44 20 7946 0000",
            "lifecyclestage": rng.choice(["lead", "customer", "subscriber"]),
            "notes": "Imported from the spring campaign; prefers email contact. " * 2,
            "owner_id": rng.randint(1, 500),
        }
    )


def _row(rng: random.Random, n: int, tenant: uuid.UUID, created: datetime) -> tuple[Any, ...]:
    action_type, provider, service, source, typical = rng.choice(KINDS)
    duration = max(1, int(rng.gauss(typical, typical / 4)))
    failed = rng.random() < 0.05
    error_type, error = rng.choice(ERRORS) if failed else (None, None)
    status = ("timeout" if error_type == "TimeoutError" else "failure") if failed else "success"
    return (
        new_id(), tenant, action_type,
        action_type.replace("_", " ").title(), provider, service, source,
        f"user{rng.randint(1, 2000)}@example.com", None, None, None, status,
        _payload(rng, n), None if failed else json.dumps({"id": str(n)}), "{}", "[]",
        error, error_type, duration, created - timedelta(milliseconds=duration), created,
        "10.0.0.1", "bench/1.0", created, created,
    )  # fmt: skip


def generate_rows(
    tenant_ids: list[uuid.UUID], count: int, days: int = 30, seed: int = 42
) -> Iterator[tuple[Any, ...]]:
    """`count` realistic actions over `days`; the first tenant holds half of them, ~5% fail."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    span = days * 86400
    for n in range(count):
        tenant = tenant_ids[0] if n % 2 == 0 else rng.choice(tenant_ids[1:] or tenant_ids)
        yield _row(rng, n, tenant, now - timedelta(seconds=rng.random() * span))


def generate_burst(
    tenant_ids: list[uuid.UUID], count: int, burst: int, seed: int = 42
) -> Iterator[tuple[Any, ...]]:
    """`burst` rows of the first tenant in the last hour, the rest spread over the others."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    for n in range(burst):
        yield _row(rng, n, tenant_ids[0], now - timedelta(seconds=rng.random() * 3600))
    yield from generate_rows(tenant_ids[1:], count - burst, seed=seed + 1)


def chunks(rows: Iterable[tuple[Any, ...]], size: int = CHUNK) -> Iterator[list[tuple[Any, ...]]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


async def copy_rows(dsn: str, rows: Iterable[tuple[Any, ...]], connections: int = 2) -> float:
    """COPY `rows` into action_logs over `connections` connections; returns rows per second.

    Chunks are handed to the connections through a short queue as they are generated, so at
    most a few are in memory at once.
    """
    queue: asyncio.Queue[list[tuple[Any, ...]] | None] = asyncio.Queue(maxsize=connections)
    written = 0

    async def copy() -> None:
        nonlocal written
        connection = await asyncpg.connect(dsn)
        try:
            while (chunk := await queue.get()) is not None:
                await connection.copy_records_to_table(
                    "action_logs", records=chunk, columns=COLUMNS
                )
                written += len(chunk)
        finally:
            await connection.close()

    started = time.perf_counter()
    workers = [asyncio.create_task(copy()) for _ in range(connections)]
    for chunk in chunks(rows):
        await queue.put(chunk)
        await asyncio.sleep(0)
    for _ in workers:
        await queue.put(None)
    await asyncio.gather(*workers)
    return written / (time.perf_counter() - started)


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy stores it on SQLite: hex UUIDs, naive UTC timestamps as text."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


def sqlite_insert(path: str, rows: Iterable[tuple[Any, ...]], *, per_commit: int = CHUNK) -> float:
    """Insert `rows` into action_logs with `sqlite3` executemany, `per_commit` rows per
    transaction, with the service's durability (WAL, synchronous=FULL); returns rows/s."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA busy_timeout=10000")
    statement = (
        f"INSERT INTO action_logs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    )
    written = 0
    started = time.perf_counter()
    try:
        for chunk in chunks(rows, per_commit):
            connection.execute("BEGIN")
            connection.executemany(statement, [tuple(map(_sqlite_value, r)) for r in chunk])
            connection.execute("COMMIT")
            written += len(chunk)
    finally:
        connection.close()
    return written / (time.perf_counter() - started)
