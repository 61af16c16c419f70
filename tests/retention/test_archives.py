"""Archive before delete: actions with exact rollups, a crash between archive and delete,
ARCHIVE=false, the scheduler's own loop and lock, and the archive listings per tenant."""

import asyncio
import gzip
import json
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.models import ActionLog
from app.core.auth import Actor
from app.core.db import utcnow
from app.retention.models import ArchiveRecord
from tests.conftest import ADMIN, TenantHandle, create_key, create_tenant
from tests.retention.conftest import (
    ACTIONS,
    Retained,
    later,
    record_actions,
    record_audits,
    set_policy,
    tenant_with_old_and_new_audits,
)

ACTOR = Actor("test")


class SimulatedCrash(Exception):
    pass


async def count_actions(retained: Retained, tenant: TenantHandle) -> int:
    async with retained.app.state.maintenance_engine.connect() as connection:
        query = select(func.count()).where(ActionLog.tenant_id == UUID(tenant.id))
        return int((await connection.execute(query)).scalar_one())


def archived_rows(retained: Retained, tenant: TenantHandle, kind: str) -> list[dict[str, Any]]:
    rows = []
    for path in sorted((retained.archive_dir / tenant.id / kind).rglob("*.ndjson.gz")):
        rows += [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    return rows


async def recorded_files(retained: Retained, tenant: TenantHandle) -> list[ArchiveRecord]:
    async with AsyncSession(retained.app.state.maintenance_engine) as session:
        query = select(ArchiveRecord).where(ArchiveRecord.tenant_id == UUID(tenant.id))
        return list((await session.scalars(query)).all())


class TestActions:
    async def test_policy_prunes_old_actions_and_keeps_rollups_exact(
        self, retained: Retained
    ) -> None:
        client = retained.client
        tenant = await create_tenant(client, "Actions Co")
        await set_policy(client, tenant, retention_days=7)
        await record_actions(client, tenant, 5)
        moment = utcnow()
        await record_actions(client, tenant, 2)
        done = await retained.scheduler.run_once(now=later(moment, 7))
        mine = [p for p in done if p.tenant_id == UUID(tenant.id)]
        assert [(p.kind, p.deleted, p.files) for p in mine] == [("actions", 5, 2)]
        stats = (await client.get("/api/v1/logs/stats", headers=tenant.headers)).json()
        assert stats["total_actions"] == 2
        assert stats["actions_by_type"] == {"t0": 1, "t1": 1}
        assert await count_actions(retained, tenant) == 2
        rows = archived_rows(retained, tenant, "actions")
        assert len(rows) == 5
        assert [r["execution_time_ms"] for r in rows] == [10, 11, 12, 13, 14]
        assert set(rows[0]) >= {"id", "tenant_id", "request_payload", "metadata", "created_at"}
        trail = (await client.get("/api/v1/logs/audits", headers=tenant.headers)).json()
        assert trail[0]["action"] == "purge" and trail[0]["resource_type"] == "action_logs"
        assert trail[0]["metadata"]["deleted"] == 5

    async def test_a_changed_action_is_read_again(self, retained: Retained) -> None:
        client = retained.client
        tenant = await create_tenant(client, "Running Co")
        created = await client.post(
            ACTIONS, json={"action_type": "job", "status": "in_progress"}, headers=tenant.headers
        )
        action_id = created.json()["id"]

        async def finish_it(_: Any) -> None:
            retained.pruner.after_archive = None
            finished = await client.patch(
                f"{ACTIONS}/{action_id}", json={"status": "completed"}, headers=tenant.headers
            )
            assert finished.status_code == 200

        retained.pruner.after_archive = finish_it
        pruned = await retained.pruner.prune(
            UUID(tenant.id), "actions", utcnow() + timedelta(seconds=1), ACTOR
        )
        assert pruned.deleted == 1
        rows = archived_rows(retained, tenant, "actions")
        assert [r["status"] for r in rows] == ["success"]
        stats = (await client.get("/api/v1/logs/stats", headers=tenant.headers)).json()
        assert stats["total_actions"] == 0
        assert stats["by_status"] == {}


class TestCrashBetweenArchiveAndDelete:
    @pytest.mark.parametrize("kind", ["actions", "audits"])
    async def test_nothing_is_lost_or_archived_twice(self, retained: Retained, kind: str) -> None:
        client = retained.client
        tenant = await create_tenant(client, "Crashing Co")
        await (record_actions if kind == "actions" else _audits)(client, tenant, 7)
        calls = 0

        async def crash_on_second_batch(_: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise SimulatedCrash()

        retained.pruner.after_archive = crash_on_second_batch
        cutoff = utcnow() + timedelta(seconds=1)
        with pytest.raises(SimulatedCrash):
            await retained.pruner.prune(UUID(tenant.id), kind, cutoff, ACTOR)
        # the first batch is deleted and recorded; the second is on disk, its rows still stored
        assert len(await recorded_files(retained, tenant)) == 1
        on_disk = list((retained.archive_dir / tenant.id / kind).rglob("*.ndjson.gz"))
        assert len(on_disk) == 2
        if kind == "actions":
            assert await count_actions(retained, tenant) == 7 - 3
        # more rows arrive before the next run: its batches are cut differently
        await (record_actions if kind == "actions" else _audits)(client, tenant, 2)
        retained.pruner.after_archive = None
        await retained.pruner.prune(UUID(tenant.id), kind, utcnow() + timedelta(seconds=1), ACTOR)
        rows = archived_rows(retained, tenant, kind)
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)), "a row is in two archive files"
        recorded = await recorded_files(retained, tenant)
        on_disk = sorted((retained.archive_dir / tenant.id / kind).rglob("*.ndjson.gz"))
        assert sorted(retained.archive_dir / r.path for r in recorded) == on_disk
        assert sum(r.row_count for r in recorded) == len(ids)
        if kind == "actions":
            assert len(ids) == 9
            assert await count_actions(retained, tenant) == 0
        else:
            assert [r["sequence"] for r in rows] == list(range(1, len(rows) + 1))
            verified = await client.get("/api/v1/logs/audits/verify", headers=tenant.headers)
            assert verified.json()["valid"] is True
            assert verified.json()["pruned_through"] == len(rows)


async def _audits(client: Any, tenant: TenantHandle, n: int) -> None:
    await record_audits(client, tenant, n, "crash")


class TestArchiveOff:
    async def test_rows_are_deleted_without_files(self, make_retained: Any) -> None:
        async for retained in make_retained(archive=False):
            tenant, moment = await tenant_with_old_and_new_audits(retained.client)
            await retained.scheduler.run_once(now=later(moment, 30))
            assert not retained.archive_dir.exists()
            assert await recorded_files(retained, tenant) == []
            result = await retained.client.get("/api/v1/logs/audits/verify", headers=tenant.headers)
            assert result.json()["valid"] is True
            assert result.json()["pruned_through"] == 10


class TestScheduler:
    async def test_the_loop_runs_on_its_own(self, make_retained: Any) -> None:
        async for retained in make_retained(retention_interval_minutes=0.002):
            tenant = await create_tenant(retained.client, "Scheduled Co")
            await set_policy(retained.client, tenant, retention_days=1)
            for _ in range(200):
                if retained.scheduler.runs >= 2:
                    break
                await asyncio.sleep(0.05)
            assert retained.scheduler.runs >= 2

    async def test_one_scheduler_at_a_time(self, retained: Retained) -> None:
        async with retained.pruner.locks.scheduler_turn():
            assert await retained.scheduler.run_once() is None
        assert await retained.scheduler.run_once() is not None


class TestListings:
    async def test_own_archives_are_the_tenants_only(self, retained: Retained) -> None:
        client = retained.client
        tenant, _ = await tenant_with_old_and_new_audits(client)
        other, moment = await tenant_with_old_and_new_audits(client)
        await retained.scheduler.run_once(now=later(moment, 30))
        mine = (await client.get("/api/v1/retention/archives", headers=tenant.headers)).json()
        theirs = (await client.get("/api/v1/retention/archives", headers=other.headers)).json()
        assert mine and theirs
        assert {f["tenant_id"] for f in mine} == {tenant.id}
        assert {f["tenant_id"] for f in theirs} == {other.id}
        assert not {f["id"] for f in mine} & {f["id"] for f in theirs}
        by_kind = await client.get(
            "/api/v1/retention/archives", params={"kind": "actions"}, headers=tenant.headers
        )
        assert by_kind.json() == []

    async def test_access(self, retained: Retained) -> None:
        client = retained.client
        tenant = await create_tenant(client, "Access Co")
        assert (await client.get("/api/v1/retention/archives")).status_code == 401
        reader = {"X-API-Key": await create_key(client, tenant, ["read"])}
        assert (await client.get("/api/v1/retention/archives", headers=reader)).status_code == 403
        assert (await client.get("/api/v1/admin/archives")).status_code == 401
        bad = await client.get("/api/v1/admin/archives", params={"kind": "x"}, headers=ADMIN)
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["query", "kind"]
        bad_id = await client.get(
            "/api/v1/admin/archives", params={"tenant_id": "x"}, headers=ADMIN
        )
        assert bad_id.status_code == 422
