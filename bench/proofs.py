"""Proof and consistency latency of the audit Merkle log at BENCH_PROOF_EVENTS (default 1M).

    .venv/bin/python bench/proofs.py          # PostgreSQL on BENCH_PG, ~1-2 minutes

Creates the database `actionlog_bench_proofs`, migrates it, creates one tenant with the CLI,
and loads its audit events and their Merkle nodes with asyncpg COPY as the owner (the events'
chain hashes are random bytes: proofs read only the stored subtrees, never the chain). Then,
in process over ASGI (the service's whole HTTP stack, no network), it times N requests each
of: `GET /audits/{id}` (one row by primary key: the limit, a read that cannot be cheaper),
`GET /audits/{id}/proof` for random events against the current head, `GET /audits/consistency`
for random pairs of sizes, and `GET /audits/tree-head`; and prints p50/p99 in ms beside the
limit's. Every tenth answer is checked with the client's verifier. The database is dropped at
the end.
"""

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "sdk" / "python"))

from actionlog_client import proofs as verify  # noqa: E402

from app.audits import merkle  # noqa: E402
from app.core.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402

PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
EVENTS = int(os.environ.get("BENCH_PROOF_EVENTS", "1000000"))
REQUESTS = int(os.environ.get("BENCH_PROOF_REQUESTS", "500"))
DB = "actionlog_bench_proofs"
CHUNK = 100_000


def url(dialect: str) -> str:
    base = PG.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', dialect)}/{DB}"


async def load(tenant_id: uuid.UUID) -> list[uuid.UUID]:
    connection = await asyncpg.connect(url("postgresql://"))
    ids = [uuid.uuid4() for _ in range(EVENTS)]
    started = time.perf_counter()
    at = datetime.now(UTC) - timedelta(days=30)
    rng = random.Random(1)
    try:
        # the tenant's own events (its creation) come first: continue its tree after them
        base = await connection.fetchval(
            "SELECT sequence FROM audit_chain_heads WHERE tenant_id = $1", tenant_id
        )
        frontier = {
            level: bytes(value)
            for level, position, value in await connection.fetch(
                "SELECT level, position, hash FROM audit_merkle_nodes WHERE tenant_id = $1",
                tenant_id,
            )
            if (level, position) in merkle.frontier_keys(base)
        }
        for start in range(0, EVENTS, CHUNK):
            hashes = [rng.randbytes(32) for _ in range(min(CHUNK, EVENTS - start))]
            records = [
                (ids[start + i], tenant_id, base + start + i + 1, "update", "contact",
                 f"c-{i % 5000}",
                 '{"before":{"n":1},"after":{"n":2}}', "{}", at + timedelta(seconds=start + i),
                 "0" * 64, value.hex())
                for i, value in enumerate(hashes)
            ]  # fmt: skip
            await connection.copy_records_to_table(
                "audit_logs",
                records=records,
                columns=["id", "tenant_id", "sequence", "action", "resource_type",
                         "resource_id", "changes", "metadata", "created_at", "prev_hash", "hash"],
            )  # fmt: skip
            added = merkle.append_leaves(
                frontier, base + start, (merkle.leaf_hash(h) for h in hashes)
            )
            await connection.copy_records_to_table(
                "audit_merkle_nodes",
                records=[
                    (tenant_id, lvl, pos, value, ids[pos - base] if lvl == 0 else None)
                    for lvl, pos, value in added
                ],
                columns=["tenant_id", "level", "position", "hash", "audit_id"],
            )
        await connection.execute(
            "UPDATE audit_chain_heads SET sequence = $1 WHERE tenant_id = $2",
            base + EVENTS,
            tenant_id,
        )
        await connection.execute("VACUUM ANALYZE audit_logs")
        await connection.execute("VACUUM ANALYZE audit_merkle_nodes")
        nodes = await connection.fetchval("SELECT count(*) FROM audit_merkle_nodes")
        print(f"loaded {EVENTS:,} events, {nodes:,} nodes in {time.perf_counter() - started:.0f} s")
    finally:
        await connection.close()
    return ids


async def timed(client: httpx.AsyncClient, paths: list[str], headers: dict[str, str]) -> Any:
    times, answers = [], []
    for path in paths:
        began = time.perf_counter()
        response = await client.get(path, headers=headers)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1], answers


async def measure(tenant_id: uuid.UUID, key: str, ids: list[uuid.UUID]) -> None:
    app = create_app(Settings(database_url=url("postgresql+asyncpg://"), log_level="warning"))
    headers = {"X-API-Key": key}
    rng = random.Random(2)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            base = "/api/v1/logs/audits"
            head = (await client.get(f"{base}/tree-head", headers=headers)).json()
            public_key = (await client.get(f"{base}/public-key", headers=headers)).json()
            size = head["tree_size"]
            picks = [rng.choice(ids) for _ in range(REQUESTS)]
            pairs = []
            for _ in range(REQUESTS):
                first = rng.randint(1, size)
                pairs.append((first, rng.randint(first, size)))
            for _ in range(2):  # warm the pool and caches, then measure
                rows = await timed(client, [f"{base}/{i}" for i in picks], headers)
            proofs = await timed(client, [f"{base}/{i}/proof" for i in picks], headers)
            consistency = await timed(
                client, [f"{base}/consistency?first={a}&second={b}" for a, b in pairs], headers
            )
            heads = await timed(client, [f"{base}/tree-head"] * (REQUESTS // 5), headers)
            for row, proof in list(zip(rows[2], proofs[2], strict=True))[::10]:
                verify.check_event_in_head(row, proof, head, public_key["public_key"])
    limit = rows[0]
    print(f"{EVENTS:,} audit events, {REQUESTS} requests each (ms, p50 / p99; ratio of p50):")
    for name, (p50, p99, _) in (
        ("GET one event (limit)", rows),
        ("inclusion proof", proofs),
        ("consistency proof", consistency),
        ("signed tree head", heads),
    ):
        print(f"  {name:24s} {p50:6.2f} / {p99:6.2f}   {p50 / limit:4.2f}x")


def cli(*args: str) -> str:
    env = {**os.environ, "DATABASE_URL": url("postgresql+asyncpg://"), "LOG_LEVEL": "warning"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "actionlog"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


async def main() -> None:
    admin = await asyncpg.connect(PG)
    await admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{DB}"')
    try:
        cli("migrate")
        tenant = json.loads(cli("tenant", "create", "Proofs", "--json"))
        tenant_id = uuid.UUID(tenant["id"])
        ids = await load(tenant_id)
        await measure(tenant_id, tenant["api_key"], ids)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
