"""Audit rows pruned by the scheduler: archived, checkpointed, and the chain still verifies.

After a prune, verification starts from the signed checkpoint and still finds an edit,
deletion or insertion among the remaining rows, a row put back below the checkpoint, a forged
or deleted checkpoint; the archive verifies offline and a changed line is found.
"""

import gzip
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import delete, select, update

from app.audits.checkpoints import Checkpoint
from app.audits.models import AuditCheckpoint, AuditLog
from app.audits.signing import verify_signature
from app.retention.verify_archive import verify_archives
from tests.conftest import ADMIN, TenantHandle, create_tenant
from tests.retention.conftest import (
    AUDITS,
    BATCH_ROWS,
    Retained,
    later,
    tenant_with_old_and_new_audits,
)

OLD = 3 + 7  # the tenant's own three rows, then seven recorded


async def verify(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    response = await client.get(f"{AUDITS}/verify", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def pruned_tenant(retained: Retained) -> TenantHandle:
    tenant, moment = await tenant_with_old_and_new_audits(retained.client)
    done = await retained.scheduler.run_once(now=later(moment, 30))
    assert done is not None
    mine = [p for p in done if p.tenant_id == UUID(tenant.id)]
    assert [(p.kind, p.deleted) for p in mine] == [("audits", OLD)]
    return tenant


async def execute(retained: Retained, statement: Any) -> None:
    async with retained.app.state.maintenance_engine.begin() as connection:
        await connection.execute(statement)


def of(tenant: TenantHandle, sequence: int) -> Any:
    return (AuditLog.tenant_id == UUID(tenant.id)) & (AuditLog.sequence == sequence)


class TestScheduledPrune:
    async def test_old_rows_are_archived_then_deleted(self, retained: Retained) -> None:
        tenant = await pruned_tenant(retained)
        client = retained.client
        rows = (await client.get(AUDITS, headers=tenant.headers)).json()
        # the two new rows and the purge that the prune recorded, newest first
        assert [r["sequence"] for r in rows] == [OLD + 3, OLD + 2, OLD + 1]
        assert rows[0]["action"] == "purge"
        assert rows[0]["resource_type"] == "audit_logs"
        assert rows[0]["metadata"]["deleted"] == OLD
        assert rows[0]["metadata"]["through_sequence"] == OLD
        assert rows[0]["user_id"] == "retention"

        listed = await client.get(
            "/api/v1/admin/archives", params={"tenant_id": tenant.id}, headers=ADMIN
        )
        assert listed.status_code == 200
        files = listed.json()
        # batches of 3 rows: 10 old rows in four files, each in sequence order
        assert [(f["first_sequence"], f["last_sequence"]) for f in files] == [
            (1, 3),
            (4, 6),
            (7, 9),
            (10, 10),
        ]
        assert sum(f["row_count"] for f in files) == OLD
        assert all(f["kind"] == "audits" and f["tenant_id"] == tenant.id for f in files)
        archived = []
        for f in files:
            path = retained.archive_dir / f["path"]
            manifest = json.loads(
                path.with_name(path.name.replace(".ndjson.gz", ".manifest.json")).read_text()
            )
            assert manifest["sha256"] == f["sha256"]
            assert manifest["rows"] == f["row_count"]
            assert manifest["checkpoint"]["sequence"] == f["last_sequence"]
            assert manifest["last_hash"] == f["last_hash"]
            archived += [
                json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()
            ]
        assert [row["sequence"] for row in archived] == list(range(1, OLD + 1))
        assert archived[0]["action"] == "create" and archived[0]["resource_type"] == "tenant"

    async def test_verify_reports_pruned_through(self, retained: Retained) -> None:
        tenant = await pruned_tenant(retained)
        result = await verify(retained.client, tenant)
        assert result["valid"] is True, result
        assert result["pruned_through"] == OLD
        assert result["checked"] == 3
        assert result["head_sequence"] == OLD + 3
        checkpoint = result["checkpoint"]
        assert checkpoint["sequence"] == OLD
        keys = (await retained.client.get(f"{AUDITS}/public-key", headers=tenant.headers)).json()
        assert keys["key_id"] == checkpoint["key_id"]
        signed = Checkpoint(
            UUID(tenant.id),
            checkpoint["sequence"],
            checkpoint["hash"],
            __import__("datetime").datetime.fromisoformat(checkpoint["created_at"]),
            checkpoint["key_id"],
            checkpoint["signature"],
        )
        assert verify_signature(keys["public_key"], checkpoint["signature"], signed.message())

    async def test_a_chain_pruned_to_its_head_verifies(self, retained: Retained) -> None:
        tenant, moment = await tenant_with_old_and_new_audits(retained.client, old=2, new=0)
        await retained.scheduler.run_once(now=later(moment, 31))
        result = await verify(retained.client, tenant)
        assert result["valid"] is True, result
        # every row but the purge record was pruned; the purge follows the checkpoint
        assert result["pruned_through"] == 5
        assert result["checked"] == 1
        again = await retained.scheduler.run_once(now=later(moment, 31))
        assert again is not None
        assert (await verify(retained.client, tenant))["valid"] is True

    async def test_other_tenants_are_untouched(self, retained: Retained) -> None:
        other = await create_tenant(retained.client, "Forever Co")
        await pruned_tenant(retained)
        result = await verify(retained.client, other)
        assert result["valid"] is True
        assert result["pruned_through"] == 0
        assert result["checked"] == 2


class TestTamperingAfterPrune:
    async def test_an_edited_remaining_row(self, retained: Retained) -> None:
        tenant = await pruned_tenant(retained)
        await execute(retained, update(AuditLog).where(of(tenant, OLD + 2)).values(user_id="eve"))
        result = await verify(retained.client, tenant)
        assert result["valid"] is False
        assert result["first_invalid_sequence"] == OLD + 2
        assert "changed" in result["reason"]
        assert result["pruned_through"] == OLD

    async def test_the_first_remaining_row_deleted(self, retained: Retained) -> None:
        tenant = await pruned_tenant(retained)
        await execute(retained, delete(AuditLog).where(of(tenant, OLD + 1)))
        result = await verify(retained.client, tenant)
        assert result["valid"] is False
        assert result["first_invalid_sequence"] == OLD + 2
        assert f"expected sequence {OLD + 1}" in result["reason"]

    async def test_a_middle_row_deleted(self, retained: Retained) -> None:
        tenant = await pruned_tenant(retained)
        await execute(retained, delete(AuditLog).where(of(tenant, OLD + 2)))
        result = await verify(retained.client, tenant)
        assert result["valid"] is False
        assert result["first_invalid_sequence"] == OLD + 3

    async def test_a_row_put_back_below_the_checkpoint(self, retained: Retained) -> None:
        tenant = await pruned_tenant(retained)
        async with retained.app.state.maintenance_engine.connect() as connection:
            query = select(*AuditLog.__table__.columns).where(of(tenant, OLD + 1))
            row = dict((await connection.execute(query)).one()._mapping)
        row.update(id=__import__("uuid").uuid4(), sequence=OLD - 1)
        await execute(retained, AuditLog.__table__.insert().values(**row))
        result = await verify(retained.client, tenant)
        assert result["valid"] is False
        assert result["first_invalid_sequence"] == OLD - 1
        assert "below the checkpoint" in result["reason"]

    async def test_a_forged_checkpoint(self, retained: Retained) -> None:
        tenant = await pruned_tenant(retained)
        # move the checkpoint forward over a row, as if it had been pruned: the hash is right
        # but the signature no longer is
        async with retained.app.state.maintenance_engine.connect() as connection:
            query = select(AuditLog.hash).where(of(tenant, OLD + 1))
            next_hash = (await connection.execute(query)).scalar_one()
        mine = (AuditCheckpoint.tenant_id == UUID(tenant.id)) & (AuditCheckpoint.sequence == OLD)
        await execute(
            retained, update(AuditCheckpoint).where(mine).values(sequence=OLD + 1, hash=next_hash)
        )
        await execute(retained, delete(AuditLog).where(of(tenant, OLD + 1)))
        result = await verify(retained.client, tenant)
        assert result["valid"] is False
        assert "invalid signature" in result["reason"]

    async def test_the_checkpoint_deleted(self, retained: Retained) -> None:
        tenant = await pruned_tenant(retained)
        checkpoints = AuditCheckpoint.tenant_id == UUID(tenant.id)
        await execute(retained, delete(AuditCheckpoint).where(checkpoints))
        result = await verify(retained.client, tenant)
        assert result["valid"] is False
        assert result["pruned_through"] == 0
        assert "expected sequence 1" in result["reason"]


class TestVerifyArchive:
    async def test_the_archive_joins_the_checkpoints(self, retained: Retained) -> None:
        tenant = await pruned_tenant(retained)
        keys = (await retained.client.get(f"{AUDITS}/public-key", headers=tenant.headers)).json()
        reports = verify_archives([retained.archive_dir / tenant.id], keys["public_key"])
        assert [r.rows for r in reports] == [BATCH_ROWS, BATCH_ROWS, BATCH_ROWS, 1]
        assert all(r.valid for r in reports), [r.problems for r in reports]
        assert "joins the signed checkpoint at sequence 10" in reports[-1].notes

    async def test_a_changed_line_is_found(self, retained: Retained) -> None:
        tenant = await pruned_tenant(retained)
        target = sorted((retained.archive_dir / tenant.id).rglob("*.ndjson.gz"))[1]
        lines = gzip.decompress(target.read_bytes()).decode().splitlines()
        row = json.loads(lines[1])
        row["user_id"] = "someone-else"
        lines[1] = json.dumps(row, separators=(",", ":"))
        _rewrite_with_manifest(target, lines)
        reports = verify_archives([retained.archive_dir / tenant.id])
        broken = [r for r in reports if not r.valid]
        assert [r.path for r in broken] == [target]
        assert "line 2 (sequence 5): the content does not match its hash" in broken[0].problems[0]

    async def test_a_changed_file_without_its_manifest(self, retained: Retained) -> None:
        tenant = await pruned_tenant(retained)
        target = sorted((retained.archive_dir / tenant.id).rglob("*.ndjson.gz"))[0]
        data = gzip.decompress(target.read_bytes()).replace(b'"u-1"', b'"u-2"')
        target.write_bytes(gzip.compress(data))
        reports = verify_archives([target])
        assert not reports[0].valid
        assert "SHA-256" in reports[0].problems[0]

    async def test_another_key_is_refused(self, retained: Retained) -> None:
        tenant = await pruned_tenant(retained)
        other = "A" * 43 + "="  # 32 zero-ish bytes: not the signing key
        reports = verify_archives([retained.archive_dir / tenant.id], other)
        assert not reports[0].valid
        assert "another key" in reports[0].problems[0]


def _rewrite_with_manifest(target: Path, lines: list[str]) -> None:
    """Change a file and fix its manifest's SHA-256, as a careful forger would."""
    import hashlib

    data = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
    target.write_bytes(data)
    manifest_path = target.with_name(target.name.replace(".ndjson.gz", ".manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = hashlib.sha256(data).hexdigest()
    manifest["bytes"] = len(data)
    manifest_path.write_text(json.dumps(manifest))
