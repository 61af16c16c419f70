"""The audit chain under real concurrency: `actionlog serve --workers 2` on PostgreSQL, 64
writers of one tenant for a few seconds (single POSTs and batches), then every acknowledged
row is stored once, the sequences have no gap and no repeat, and the chain neither forks nor
fails to verify. Each worker runs its own group-commit writer; the groups of both queue on the
tenant's chain head."""

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from tests.audits.conftest import AUDITS
from tests.audits.test_audit_group_commit import assert_whole_chain, stored_rows
from tests.conftest import ADMIN_TOKEN, create_tenant
from tests.live import start_service

WRITERS = 64
SECONDS = 3.0


async def _writer(url: str, headers: dict[str, str], n: int, stop_at: float) -> list[str]:
    """Posts until `stop_at`, and at least twice (a loaded machine may reach `stop_at` before
    every writer has started); the ids of the rows it was answered 201 for."""
    acknowledged: list[str] = []
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        i = 0
        while loop.time() < stop_at or i < 2:
            i += 1
            one = {
                "action": "update",
                "resource_type": "contact",
                "resource_id": f"w{n}",
                "before": {"i": i},
                "after": {"i": i + 1},
            }
            if n % 4 == 0:  # a quarter of the writers send batches of 10
                body: Any = {"events": [{**one, "resource_id": f"w{n}-{k}"} for k in range(10)]}
                response = await http.post(f"{AUDITS}/batch", json=body, headers=headers)
                assert response.status_code == 201, response.text
                acknowledged.extend(row["id"] for row in response.json()["events"])
            else:
                response = await http.post(AUDITS, json=one, headers=headers)
                assert response.status_code == 201, response.text
                acknowledged.append(response.json()["id"])
    return acknowledged


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_64_writers_over_2_workers_keep_one_whole_chain(empty_database_url: str) -> None:
    service = await start_service(
        empty_database_url, workers=2, ADMIN_TOKEN=ADMIN_TOKEN, ALERTS_ENABLED="false"
    )
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as http:
            tenant = await create_tenant(http, "Busy")
            stop_at = asyncio.get_running_loop().time() + SECONDS
            results = await asyncio.gather(
                *(_writer(service.url, tenant.headers, n, stop_at) for n in range(WRITERS))
            )
            verified = (await http.get(f"{AUDITS}/verify", headers=tenant.headers)).json()
    finally:
        await service.stop()
    acknowledged = [row_id for ids in results for row_id in ids]
    assert len(acknowledged) > WRITERS
    engine = create_async_engine(empty_database_url)
    try:
        rows = await stored_rows(engine, tenant.id)
    finally:
        await engine.dispose()
    written = {str(row["id"]) for row in rows if row["resource_type"] == "contact"}
    assert len(written) == len(acknowledged) == len(set(acknowledged))  # no loss, no duplicate
    assert written == set(acknowledged)
    assert_whole_chain(rows)  # no gap, no repeated sequence, no fork
    assert verified["valid"] is True and verified["checked"] == len(rows)
