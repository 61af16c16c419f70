"""The `actionlog` command, run as a user runs it: a separate process on the test database."""

import asyncio
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _archive_dir(archive_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`actionlog prune` archives into the session's ARCHIVE_DIR, never ./archive."""
    monkeypatch.setenv("ARCHIVE_DIR", str(archive_dir))


@dataclass
class Result:
    code: int
    out: str
    err: str


async def actionlog(database_url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "warning", **(env or {})}
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


def one_error_line(result: Result) -> str:
    assert result.code == 1, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    return lines[0]


async def test_tenant_and_keys_lifecycle(database_url: str, client: httpx.AsyncClient) -> None:
    slug = f"cli-{uuid4().hex[:8]}"
    created = await actionlog(database_url, "tenant", "create", "CLI Co", "--slug", slug, "--json")
    assert created.code == 0, created.err
    tenant = json.loads(created.out)
    assert tenant["slug"] == slug
    works = await client.get("/api/v1/keys", headers={"X-API-Key": tenant["api_key"]})
    assert works.status_code == 200

    key = await actionlog(database_url, "key", "create", slug, "--scopes", "read", "--json")
    assert key.code == 0, key.err
    read_key = json.loads(key.out)
    assert read_key["scopes"] == ["read"]
    forbidden = await client.get("/api/v1/keys", headers={"X-API-Key": read_key["key"]})
    assert forbidden.status_code == 403

    listed = await actionlog(database_url, "key", "list", tenant["id"])
    assert listed.code == 0
    assert read_key["prefix"] in listed.out
    assert read_key["key"] not in listed.out

    revoked = await actionlog(database_url, "key", "revoke", read_key["id"])
    assert revoked.code == 0, revoked.err
    gone = await client.get("/api/v1/keys", headers={"X-API-Key": read_key["key"]})
    assert gone.status_code == 401


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["key", "create", "no-such-tenant"], "tenant 'no-such-tenant' not found"),
        (["key", "list", "no-such-tenant"], "not found"),
        (["key", "revoke", "not-a-uuid"], "is not a UUID"),
        (["key", "revoke", "00000000-0000-0000-0000-000000000000"], "not found"),
        (["tenant", "create", "X", "--slug", "Bad Slug"], "slug"),
        (["tenant", "create", "X", "--retention-days", "0"], "retention_days"),
    ],
)
async def test_errors_are_one_line_and_non_zero(
    database_url: str, args: list[str], message: str
) -> None:
    assert message in one_error_line(await actionlog(database_url, *args))


async def test_bad_scope_is_one_line(database_url: str) -> None:
    slug = f"cli-{uuid4().hex[:8]}"
    assert (await actionlog(database_url, "tenant", "create", "S", "--slug", slug)).code == 0
    line = one_error_line(await actionlog(database_url, "key", "create", slug, "--scopes", "root"))
    assert "scopes" in line


async def test_duplicate_slug(database_url: str) -> None:
    slug = f"cli-{uuid4().hex[:8]}"
    assert (await actionlog(database_url, "tenant", "create", "A", "--slug", slug)).code == 0
    line = one_error_line(await actionlog(database_url, "tenant", "create", "B", "--slug", slug))
    assert "already taken" in line


async def test_migrate_is_idempotent(database_url: str) -> None:
    result = await actionlog(database_url, "migrate")
    assert result.code == 0, result.err


async def test_unreachable_database() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"
    assert "database unreachable" in one_error_line(await actionlog(url, "migrate"))


async def test_demo_loads_data_and_is_idempotent(
    database_url: str, client: httpx.AsyncClient
) -> None:
    first = await actionlog(database_url, "demo", "--json")
    assert first.code == 0, first.err
    demo = json.loads(first.out)
    second = json.loads((await actionlog(database_url, "demo", "--json")).out)
    assert second["tenant_id"] == demo["tenant_id"]
    assert second["api_key"] != demo["api_key"]
    assert second["loaded_actions"] == 0
    assert demo["loaded_actions"] >= 200
    listing = await client.get(
        "/api/v1/logs/actions", params={"limit": 1000}, headers={"X-API-Key": second["api_key"]}
    )
    assert listing.status_code == 200
    assert len(listing.json()) == demo["loaded_actions"]
    # each run leaves one live demo key: the previous one stops working
    earlier = await client.get("/api/v1/keys", headers={"X-API-Key": demo["api_key"]})
    assert earlier.status_code == 401
    keys = await client.get("/api/v1/keys", headers={"X-API-Key": second["api_key"]})
    assert [k["name"] for k in keys.json() if k["revoked_at"] is None] == ["demo"]
    assert "admin_token" not in second  # none is configured for this database
    # the audit trail spreads over the same days as the actions, and its chain verifies
    key = {"X-API-Key": second["api_key"]}
    audits = await client.get("/api/v1/logs/audits", params={"limit": 1000}, headers=key)
    days = {row["created_at"][:10] for row in audits.json()}
    action_days = {row["created_at"][:10] for row in listing.json()}
    assert len(days) >= 5 and len(days - action_days) <= 1, (days, action_days)
    verify = await client.get("/api/v1/logs/audits/verify", headers=key)
    assert verify.json()["valid"] is True


async def test_demo_prints_the_configured_admin_token(database_url: str) -> None:
    env_token = "demo-admin-token-0123456789"
    result = await actionlog(database_url, "demo", "--json", env={"ADMIN_TOKEN": env_token})
    assert result.code == 0, result.err
    assert json.loads(result.out)["admin_token"] == env_token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serve_migrates_then_serves(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"}
    process = await asyncio.create_subprocess_exec(
        str(BIN / "actionlog"),
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(100):
                try:
                    ready = await http.get("/ready")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("server did not start")
            assert ready.status_code == 200
            assert (await http.get("/docs")).status_code == 200
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=20)


async def test_prune_and_rebuild_rollups(database_url: str, client: httpx.AsyncClient) -> None:
    slug = f"cli-{uuid4().hex[:8]}"
    created = await actionlog(
        database_url, "tenant", "create", "Retained", "--slug", slug, "--retention-days", "30",
        "--json",
    )  # fmt: skip
    key = {"X-API-Key": json.loads(created.out)["api_key"]}
    for n in range(3):
        response = await client.post(
            "/api/v1/logs/actions", json={"action_type": f"t{n}"}, headers=key
        )
        assert response.status_code == 201
    kept = await actionlog(database_url, "prune", slug)
    assert kept.code == 0, kept.err
    assert "deleted 0 actions" in kept.out
    everything = await actionlog(database_url, "prune", slug, "--before", "2999-01-01T00:00:00Z")
    assert "deleted 3 actions" in everything.out
    stats = (await client.get("/api/v1/logs/stats", headers=key)).json()
    assert stats["total_actions"] == 0
    rebuilt = await actionlog(database_url, "rollups", "rebuild", slug)
    assert rebuilt.code == 0, rebuilt.err
    assert "rebuilt the rollups of 1 tenant(s)" in rebuilt.out
    # the API's forms: a date, or a time without a zone, is UTC
    dated = await actionlog(database_url, "prune", slug, "--before", "2999-01-01")
    assert dated.code == 0, dated.err
    assert "deleted 0 actions before 2999-01-01 00:00:00+00:00" in dated.out
    bad = await actionlog(database_url, "prune", slug, "--before", "soon")
    assert one_error_line(bad).startswith("error: --before: ")
