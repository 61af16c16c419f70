"""Bulk loading of benchmark data with asyncpg COPY (the database's own write limit)."""

import asyncio
import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from app.core.db import new_id

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


def generate_rows(
    tenant_ids: list[uuid.UUID], count: int, days: int = 30, seed: int = 42
) -> Iterator[tuple[Any, ...]]:
    """`count` realistic actions; the first tenant holds half of them, ~5% fail."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    span = days * 86400
    for n in range(count):
        tenant = tenant_ids[0] if n % 2 == 0 else rng.choice(tenant_ids[1:] or tenant_ids)
        action_type, provider, service, source, typical = rng.choice(KINDS)
        created = now - timedelta(seconds=rng.random() * span)
        duration = max(1, int(rng.gauss(typical, typical / 4)))
        failed = rng.random() < 0.05
        error_type, error = rng.choice(ERRORS) if failed else (None, None)
        status = ("timeout" if error_type == "TimeoutError" else "failure") if failed else "success"
        yield (
            new_id(), tenant, action_type,
            action_type.replace("_", " ").title(), provider, service, source,
            f"user{rng.randint(1, 2000)}@example.com", None, None, None, status,
            _payload(rng, n), None if failed else json.dumps({"id": str(n)}), "{}", "[]",
            error, error_type, duration, created - timedelta(milliseconds=duration), created,
            "10.0.0.1", "bench/1.0", created, created,
        )  # fmt: skip


async def copy_rows(dsn: str, rows: list[tuple[Any, ...]], connections: int = 2) -> float:
    """COPY `rows` into action_logs over `connections` connections; returns rows per second."""
    chunks = [rows[i::connections] for i in range(connections)]

    async def copy(chunk: list[tuple[Any, ...]]) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            for start in range(0, len(chunk), 50_000):
                await connection.copy_records_to_table(
                    "action_logs", records=chunk[start : start + 50_000], columns=COLUMNS
                )
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(copy(chunk) for chunk in chunks))
    return len(rows) / (time.perf_counter() - started)
