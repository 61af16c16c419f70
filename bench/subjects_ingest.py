"""What sealing personal fields costs audit ingest: the chain extension of a tenant that
declares personal fields beside one that declares none.

    .venv/bin/python bench/subjects_ingest.py      # PostgreSQL on BENCH_PG, ~1 minute

Creates the database `actionlog_bench_subjects`, migrates it, creates two tenants with the CLI,
declares six personal fields (user_id, ip_address, user_agent, changes.before.email,
changes.after.email, metadata.customer.name) for the second, then appends audit events (50
data subjects, each event holding every declared field) through the one chain extension
(`extend_chains`, what every recording path commits through, without HTTP), as the service
role, alternating rounds between the tenants: single events (one transaction each, as a POST
without group commit) and batches of 100. Prints events/s of each, and the cost of sealing as
a share of the rate without it (the limit measured in the same run). The database is dropped
at the end.
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.audits import repository  # noqa: E402
from app.audits.events import EventBuilder  # noqa: E402
from app.core.auth import Actor  # noqa: E402
from app.core.config import Settings  # noqa: E402
from app.core.db import create_engine  # noqa: E402
from app.core.redact import PayloadRules  # noqa: E402
from app.core.tenancy import set_tenant  # noqa: E402
from app.subjects.repository import SubjectRepository  # noqa: E402

FIELDS = [
    "user_id",
    "ip_address",
    "user_agent",
    "changes.before.email",
    "changes.after.email",
    "metadata.customer.name",
]

PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DB = "actionlog_bench_subjects"
SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
ROUNDS = int(os.environ.get("BENCH_RUNS", "3"))


def url(dialect: str) -> str:
    return f"{PG.rsplit('/', 1)[0].replace('postgresql://', dialect)}/{DB}"


def cli(*args: str) -> str:
    env = {**os.environ, "DATABASE_URL": url("postgresql+asyncpg://"), "LOG_LEVEL": "warning"}
    actionlog = str(Path(sys.executable).parent / "actionlog")
    return subprocess.run(
        [actionlog, *args], env=env, capture_output=True, text=True, check=True
    ).stdout


async def rate(engine: Any, tenant_id: uuid.UUID, batch: int) -> float:
    builder = EventBuilder(PayloadRules.from_settings(Settings()))
    events = [
        builder.build(
            "update", "contact", f"c-{i}", {"n": i, "email": f"u{i % 50}@example.com"},
            {"n": i + 1, "email": f"u{i % 50}@new.example.com"},
            Actor(f"user-{i % 50}", "203.0.113.7", "bench/1.0"),
            {"source": "bench", "customer": {"name": f"Customer {i % 50}"}},
        )
        for i in range(batch)
    ]  # fmt: skip
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < SECONDS:
        async with engine.begin() as connection:
            await repository.extend_chains(connection, [(tenant_id, events)])
        done += batch
    return done / (time.perf_counter() - began)


async def measure(tenants: list[uuid.UUID]) -> None:
    settings = Settings(database_url=url("postgresql+asyncpg://"), log_level="warning")
    engine = create_engine(settings)
    async with engine.begin() as connection:
        await set_tenant(connection, tenants[1])
        await SubjectRepository(connection, tenants[1]).set_config("user_id", FIELDS)
    results: dict[tuple[int, bool], list[float]] = {}
    try:
        for _ in range(ROUNDS):
            for batch in (1, 100):
                for sealed, tenant in ((False, tenants[0]), (True, tenants[1])):
                    results.setdefault((batch, sealed), []).append(
                        await rate(engine, tenant, batch)
                    )
    finally:
        await engine.dispose()
    print(f"audit chain extension on PostgreSQL, medians of {ROUNDS} rounds of {SECONDS:.0f} s:")
    for batch in (1, 100):
        plain = statistics.median(results[(batch, False)])
        sealed = statistics.median(results[(batch, True)])
        print(
            f"  {batch:3d} per transaction: {plain:8.0f} ev/s without personal fields (limit), "
            f"{sealed:8.0f} ev/s with six sealed: {sealed / plain:.2f}x "
            f"(cost {100 * (1 - sealed / plain):.0f}%)"
        )


async def main() -> None:
    admin = await asyncpg.connect(PG)
    await admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{DB}"')
    try:
        cli("migrate")
        tenants = [
            uuid.UUID(json.loads(cli("tenant", "create", f"T{i}", "--json"))["id"])
            for i in range(2)
        ]
        await measure(tenants)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
