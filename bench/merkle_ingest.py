"""What the Merkle log costs audit ingest: the chain extension with and without its leaves.

    .venv/bin/python bench/merkle_ingest.py        # PostgreSQL on BENCH_PG, ~1 minute

Creates the database `actionlog_bench_merkle`, migrates it, creates two tenants with the CLI,
then appends audit events through the one chain extension (`extend_chains`, what every
recording path commits through, without HTTP), as the service role, alternating rounds with
the Merkle append (`merkle_log.append_events`) in place and replaced by a no-op, each round
on its own tenant: single events (one transaction each, as a POST without group commit) and
batches of 100. Prints events/s of each, and the cost of the Merkle log as a share of the
rate without it (the limit measured in the same run). The database is dropped at the end.
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

PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DB = "actionlog_bench_merkle"
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
            "update", "contact", f"c-{i}", {"n": i, "email": "a@example.com"}, {"n": i + 1},
            Actor(f"user-{i % 50}", "203.0.113.7", "bench/1.0"), {"source": "bench"},
        )
        for i in range(batch)
    ]  # fmt: skip
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < SECONDS:
        async with engine.begin() as connection:
            await repository.extend_chains(connection, [(tenant_id, events)])
        done += batch
    return done / (time.perf_counter() - began)


async def no_merkle(*_: Any, **__: Any) -> None:
    return None


async def measure(tenants: list[uuid.UUID]) -> None:
    settings = Settings(database_url=url("postgresql+asyncpg://"), log_level="warning")
    engine = create_engine(settings)
    real = repository.merkle_log.append_events
    results: dict[tuple[int, bool], list[float]] = {}
    try:
        for _ in range(ROUNDS):
            for batch in (1, 100):
                for with_log, tenant in ((False, tenants[0]), (True, tenants[1])):
                    repository.merkle_log.append_events = real if with_log else no_merkle  # type: ignore[assignment]
                    results.setdefault((batch, with_log), []).append(
                        await rate(engine, tenant, batch)
                    )
    finally:
        repository.merkle_log.append_events = real  # type: ignore[assignment]
        await engine.dispose()
    print(f"audit chain extension on PostgreSQL, medians of {ROUNDS} rounds of {SECONDS:.0f} s:")
    for batch in (1, 100):
        without = statistics.median(results[(batch, False)])
        with_log = statistics.median(results[(batch, True)])
        print(
            f"  {batch:3d} per transaction: {without:8.0f} ev/s without the Merkle log (limit), "
            f"{with_log:8.0f} ev/s with it: {with_log / without:.2f}x "
            f"(cost {100 * (1 - with_log / without):.0f}%)"
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
