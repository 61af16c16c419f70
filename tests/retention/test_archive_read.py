"""Archives read back as readers see them: `GET /api/v1/retention/archives/{id}/records` and
`actionlog archive cat`. A tenant declares personal fields, records events of two subjects
and one without a subject, and retention archives them; the records read back open the sealed
fields while alice's key exists and show "[ERASED]" after her erasure, bob's untouched, while
the files themselves never change (`--stored`, verify-archive)."""

import json
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx

from app.core.db import utcnow
from app.retention.verify_archive import verify_archives
from tests.conftest import TenantHandle, create_key, create_tenant
from tests.retention.conftest import AUDITS, Retained, later, record_actions, set_policy
from tests.retention.test_retention_cli import actionlog
from tests.subjects.test_erasure import assert_erased, declare, record

ARCHIVES = "/api/v1/retention/archives"


async def archived_tenant(retained: Retained) -> TenantHandle:
    """A tenant whose sealed audit events, and a few actions, were all archived."""
    client = retained.client
    tenant = await create_tenant(client, "Archive Reader Co")
    await set_policy(client, tenant, audit_retention_days=30, retention_days=30)
    await declare(client, tenant)
    await record(client, tenant)
    await record_actions(client, tenant, 2)
    done = await retained.scheduler.run_once(now=later(utcnow(), 31))
    assert {p.kind for p in done if p.tenant_id == UUID(tenant.id)} == {"actions", "audits"}
    return tenant


async def archives(client: httpx.AsyncClient, tenant: TenantHandle, kind: str) -> list[Any]:
    response = await client.get(ARCHIVES, params={"kind": kind}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return list(response.json())


async def read_all(
    client: httpx.AsyncClient, tenant: TenantHandle, archive_id: str, limit: int = 2
) -> list[dict[str, Any]]:
    """Every record of an archive, page by page, following X-Next-Cursor (and checking Link)."""
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        page = await client.get(
            f"{ARCHIVES}/{archive_id}/records", params=params, headers=tenant.headers
        )
        assert page.status_code == 200, page.text
        assert len(page.json()) <= limit
        rows += page.json()
        cursor = page.headers.get("X-Next-Cursor")
        if cursor is None:
            assert "Link" not in page.headers
            return rows
        assert page.headers["Link"] == (
            f"</api/v1/retention/archives/{archive_id}/records?limit={limit}&cursor={cursor}>; "
            'rel="next"'
        )
        params = {"limit": limit, "cursor": cursor}


async def every_archived_audit(retained: Retained, tenant: TenantHandle) -> list[dict[str, Any]]:
    rows = []
    for archive in await archives(retained.client, tenant, "audits"):
        records = await read_all(retained.client, tenant, archive["id"])
        assert len(records) == archive["row_count"]
        rows += records
    return rows


def contacts(rows: list[dict[str, Any]], resource_id: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["resource_id"] == resource_id]


async def test_records_open_while_the_key_exists_and_read_erased_after(
    retained: Retained,
) -> None:
    client = retained.client
    tenant = await archived_tenant(retained)
    rows = await every_archived_audit(retained, tenant)
    assert [row["sequence"] for row in rows] == list(range(1, len(rows) + 1))
    assert all("sealed" not in row for row in rows)
    alice = contacts(rows, "c-1")
    assert [row["user_id"] for row in alice] == ["alice", "alice"]
    assert alice[0]["changes"]["before"]["email"] == "alice@example.com"
    assert alice[0]["ip_address"] == "203.0.113.7"
    assert alice[1]["metadata"]["customer"]["name"] == "alice name"
    # every archived column, as the list routes name them
    assert {"id", "tenant_id", "sequence", "prev_hash", "hash", "created_at"} <= set(alice[0])

    erased = await client.post("/api/v1/subjects/alice/erase", headers=tenant.headers)
    assert erased.status_code == 200, erased.text
    after = await every_archived_audit(retained, tenant)
    for row in contacts(after, "c-1"):
        assert_erased(row)
    (bob,) = contacts(after, "c-2")
    assert bob["user_id"] == "bob" and bob["changes"]["after"]["email"] == "bob@new.example.com"
    (nobody,) = contacts(after, "c-3")
    assert nobody == contacts(rows, "c-3")[0]
    # what is not personal is the same as before, hashes included
    unchanged = ("id", "sequence", "hash", "prev_hash", "action", "created_at")
    assert [[r[k] for k in unchanged] for r in after] == [[r[k] for k in unchanged] for r in rows]
    # and the files still verify
    keys = (await client.get(f"{AUDITS}/public-key", headers=tenant.headers)).json()
    reports = verify_archives([retained.archive_dir / tenant.id], keys["public_key"])
    assert reports and all(r.valid for r in reports), [r.problems for r in reports]

    (actions,) = await archives(client, tenant, "actions")
    listed = await read_all(client, tenant, actions["id"], limit=10)
    assert [row["execution_time_ms"] for row in listed] == [10, 11]


async def test_access_isolation_and_bad_requests(retained: Retained, tmp_path: Path) -> None:
    client = retained.client
    tenant = await archived_tenant(retained)
    other = await create_tenant(client, "Other Reader Co")
    archive = (await archives(client, tenant, "audits"))[0]
    path = f"{ARCHIVES}/{archive['id']}/records"

    assert (await client.get(path)).status_code == 401
    reader = {"X-API-Key": await create_key(client, tenant, ["read"])}
    assert (await client.get(path, headers=reader)).status_code == 403
    unknown = f"{ARCHIVES}/{uuid4()}/records"
    for headers, target in ((other.headers, path), (tenant.headers, unknown)):
        missing = await client.get(target, headers=headers)
        assert missing.status_code == 404
        assert "not found" in missing.json()["detail"]
    bad_id = await client.get(f"{ARCHIVES}/nope/records", headers=tenant.headers)
    assert bad_id.status_code == 422 and bad_id.json()["detail"][0]["loc"][-1] == "archive_id"

    first = await client.get(path, params={"limit": 1}, headers=tenant.headers)
    cursor = first.headers["X-Next-Cursor"]
    for forged in ("garbage", cursor[:-2], _cursor(archive["row_count"]), _cursor(0)):
        response = await client.get(path, params={"cursor": forged}, headers=tenant.headers)
        assert response.status_code == 400, (forged, response.text)
        assert "cursor" in response.json()["detail"]
    too_many = await client.get(path, params={"limit": 1001}, headers=tenant.headers)
    assert too_many.status_code == 422

    # the file gone from this host's ARCHIVE_DIR: a conflict that names it
    stored = retained.archive_dir / archive["path"]
    moved = tmp_path / "away.ndjson.gz"
    stored.rename(moved)
    try:
        gone = await client.get(path, headers=tenant.headers)
        assert gone.status_code == 409
        assert archive["path"] in gone.json()["detail"]
        stored.write_bytes(b"not gzip")
        broken = await client.get(path, headers=tenant.headers)
        assert broken.status_code == 409
        assert "cannot be read" in broken.json()["detail"]
    finally:
        moved.replace(stored)
    assert (await client.get(path, headers=tenant.headers)).status_code == 200


def _cursor(rows: int) -> str:
    from app.core.pagination import LineCursor

    return LineCursor(rows).encode()


async def test_archive_cat_opens_and_stored_does_not(database_url: str, retained: Retained) -> None:
    client = retained.client
    tenant = await archived_tenant(retained)
    for archive in await archives(client, tenant, "audits"):
        records = await read_all(client, tenant, archive["id"])
        if contacts(records, "c-1"):
            break
    target = archive["path"]

    async def cat(*args: str) -> Any:
        return await actionlog(database_url, retained.archive_dir, "archive", "cat", *args)

    shown = await cat(target)
    assert shown.code == 0, shown.err
    lines = [json.loads(line) for line in shown.out.splitlines()]
    assert lines == records  # what the route shows
    assert {row["user_id"] for row in contacts(lines, "c-1")} == {"alice"}

    raw = await cat(target, "--stored")
    assert raw.code == 0, raw.err
    assert "alice" not in raw.out and "203.0.113.7" not in raw.out
    stored = [json.loads(line) for line in raw.out.splitlines()]
    assert [row["id"] for row in stored] == [row["id"] for row in lines]
    assert all(row["sealed"] for row in contacts(stored, "c-1"))

    assert (await client.post("/api/v1/subjects/alice/erase", headers=tenant.headers)).is_success
    erased = await cat(target)
    assert erased.code == 0, erased.err
    alices = [json.loads(line) for line in erased.out.splitlines()]
    assert contacts(alices, "c-1")
    for row in contacts(alices, "c-1"):
        assert_erased(row)
    others = [row for row in alices if row["resource_id"] != "c-1"]
    assert others == [row for row in lines if row["resource_id"] != "c-1"]
    after = await cat(target, "--stored")
    assert after.out == raw.out  # the file never changes

    # a file of actions (nothing sealed) reads with no database at all
    (actions,) = await archives(client, tenant, "actions")
    plain = await actionlog(
        "postgresql+asyncpg://nobody@127.0.0.1:1/none", retained.archive_dir, "archive", "cat",
        actions["path"],
    )  # fmt: skip
    assert plain.code == 0, plain.err
    assert [json.loads(line)["execution_time_ms"] for line in plain.out.splitlines()] == [10, 11]
