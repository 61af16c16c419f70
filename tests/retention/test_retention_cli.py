"""The retention commands, run as a user runs them: prune, archive list/cat, verify-archive,
tenant retention, verify after a prune."""

import asyncio
import gzip
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import httpx

from tests.retention.conftest import record_actions, record_audits

BIN = Path(sys.executable).parent


@dataclass
class Result:
    code: int
    out: str
    err: str


async def actionlog(database_url: str, archive_dir: Path, *args: str) -> Result:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "warning",
        "ARCHIVE_DIR": str(archive_dir),
        "RETENTION_BATCH_PAUSE_MS": "0",
        "RETENTION_DUTY": "1",
    }
    process = await asyncio.create_subprocess_exec(
        str(BIN / "actionlog"),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def test_prune_archive_and_verify(
    database_url: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    slug = f"ret-{uuid4().hex[:8]}"
    created = await actionlog(
        database_url, archive, "tenant", "create", "Retained", "--slug", slug,
        "--audit-retention-days", "30", "--json",
    )  # fmt: skip
    assert created.code == 0, created.err
    tenant = json.loads(created.out)
    assert tenant["audit_retention_days"] == 30
    from tests.conftest import TenantHandle

    handle = TenantHandle(tenant["id"], slug, tenant["api_key"], tenant["api_key_id"])
    await record_audits(client, handle, 4, "cli")
    await record_actions(client, handle, 3)

    by_policy = await actionlog(database_url, archive, "prune", slug)
    assert by_policy.code == 0, by_policy.err
    assert "deleted 0 audits" in by_policy.out
    assert "actions" not in by_policy.out  # no retention_days: actions are kept

    pruned = await actionlog(
        database_url, archive, "prune", slug, "--kind", "audits", "--before", "2999-01-01T00:00:00Z"
    )
    assert pruned.code == 0, pruned.err
    assert "deleted 6 audits" in pruned.out
    assert "chain checkpoint at sequence 6" in pruned.out

    verified = await actionlog(database_url, archive, "verify", slug)
    assert verified.code == 0, verified.err
    assert "valid, 1 rows, pruned through 6" in verified.out

    listed = await actionlog(database_url, archive, "archive", "list", slug, "--json")
    assert listed.code == 0, listed.err
    files = [json.loads(line) for line in listed.out.splitlines()]
    assert [(f["kind"], f["first_sequence"], f["last_sequence"]) for f in files] == [
        ("audits", 1, 6)
    ]
    cat = await actionlog(database_url, archive, "archive", "cat", files[0]["path"])
    assert cat.code == 0, cat.err
    lines = [json.loads(line) for line in cat.out.splitlines()]
    assert [row["sequence"] for row in lines] == [1, 2, 3, 4, 5, 6]

    keys = (await client.get("/api/v1/logs/audits/public-key", headers=handle.headers)).json()
    good = await actionlog(
        database_url, archive, "verify-archive", str(archive / tenant["id"]),
        "--public-key", keys["public_key"],
    )  # fmt: skip
    assert good.code == 0, good.err
    assert ": ok, audits, 6 rows: joins the signed checkpoint at sequence 6" in good.out

    target = archive / files[0]["path"]
    data = gzip.decompress(target.read_bytes()).replace(b'"cli-2"', b'"cli-9"')
    target.write_bytes(gzip.compress(data))
    bad = await actionlog(database_url, archive, "verify-archive", str(target))
    assert bad.code == 1
    assert "INVALID" in bad.out
    assert "1 of 1 archive file(s) do not verify" in bad.err

    actions = await actionlog(
        database_url, archive, "prune", slug, "--kind", "actions", "--before", "2999-01-01T00:00Z"
    )
    assert "deleted 3 actions" in actions.out


async def test_tenant_retention_command(database_url: str, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    slug = f"ret-{uuid4().hex[:8]}"
    await actionlog(database_url, archive, "tenant", "create", "Policy", "--slug", slug)
    changed = await actionlog(
        database_url, archive, "tenant", "retention", slug,
        "--retention-days", "90", "--audit-retention-days", "365", "--json",
    )  # fmt: skip
    assert changed.code == 0, changed.err
    assert json.loads(changed.out) == {"retention_days": 90, "audit_retention_days": 365}
    cleared = await actionlog(
        database_url, archive, "tenant", "retention", slug, "--retention-days", "none", "--json"
    )
    assert json.loads(cleared.out) == {"retention_days": None, "audit_retention_days": 365}
    bad = await actionlog(
        database_url, archive, "tenant", "retention", slug, "--audit-retention-days", "0"
    )
    assert bad.code == 1
    assert "audit_retention_days" in bad.err
    word = await actionlog(
        database_url, archive, "tenant", "retention", slug, "--retention-days", "x"
    )
    assert word.code == 1 and "not a number of days" in word.err


async def test_bad_arguments(database_url: str, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    missing = await actionlog(database_url, archive, "archive", "cat", "nope.ndjson.gz")
    assert missing.code == 1 and "not found" in missing.err
    not_gzip = tmp_path / "x.ndjson.gz"
    not_gzip.write_text("hello")
    cat = await actionlog(database_url, archive, "archive", "cat", str(not_gzip))
    assert cat.code == 1 and "not a readable gzip archive" in cat.err
    none = await actionlog(database_url, archive, "verify-archive", str(tmp_path / "absent"))
    assert none.code == 1 and "not found" in none.err
