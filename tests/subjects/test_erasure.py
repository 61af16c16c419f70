"""Personal fields of audit events sealed per data subject, and erasure that keeps the proofs.

A tenant declares its personal fields; two subjects (alice, bob) and an event without one are
recorded. Before erasure a `read` key sees the plaintext and filters by the digested user_id;
after alice is erased her fields read "[ERASED]" in the list, one event, the resource trail,
the state at a time and the timeline, while bob's and every other field are unchanged, the
chain verifies, every event's proof verifies against the signed tree head with the tests' own
RFC 9162 verifier, and archives pass verify-archive. The live stream's stored payloads never
hold a sealed value.
"""

import gzip
import json
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import utcnow
from app.core.tenancy import tenant_connection
from app.retention.verify_archive import verify_archives
from app.streams.events import events_after
from tests.conftest import TenantHandle, create_key, create_tenant, first_error
from tests.proofs.rfc9162 import head_signed, inclusion_holds
from tests.retention.conftest import Retained, later, set_policy

AUDITS = "/api/v1/logs/audits"
SUBJECTS = "/api/v1/subjects"
ERASED = "[ERASED]"
FIELDS = [
    "user_id",
    "ip_address",
    "user_agent",
    "changes.before.email",
    "changes.after.email",
    "metadata.customer.name",
]


async def declare(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    response = await client.put(
        f"{SUBJECTS}/config", json={"fields": FIELDS}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"fields": FIELDS, "subject_path": "user_id"}


def event(user: str | None, resource: str, email: str, new_email: str) -> dict[str, Any]:
    return {
        "action": "update",
        "resource_type": "contact",
        "resource_id": resource,
        "before": {"email": email, "plan": "free"},
        "after": {"email": new_email, "plan": "pro"},
        "user_id": user,
        "ip_address": "203.0.113.7" if user else "198.51.100.1",
        "user_agent": f"browser of {user}",
        "metadata": {"customer": {"name": f"{user} name", "tier": "gold"}, "source": "crm"},
        "correlation_id": f"inc-{resource}",
    }


async def record(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    events = [
        event("alice", "c-1", "alice@example.com", "alice@new.example.com"),
        event("bob", "c-2", "bob@example.com", "bob@new.example.com"),
        event("alice", "c-1", "alice@new.example.com", "alice@third.example.com"),
        event(None, "c-3", "nobody@example.com", "none@example.com"),
    ]
    response = await client.post(f"{AUDITS}/batch", json={"events": events}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    # the answer shows what was recorded, as readers see it
    assert response.json()["events"][0]["changes"]["before"]["email"] == "alice@example.com"


async def listed(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> Any:
    response = await client.get(AUDITS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def assert_erased(row: dict[str, Any]) -> None:
    assert row["user_id"] == ERASED
    assert row["ip_address"] == ERASED and row["user_agent"] == ERASED
    assert row["changes"]["before"] == {"email": ERASED, "plan": "free"}
    assert row["changes"]["after"] == {"email": ERASED, "plan": "pro"}
    diff = {entry["path"]: entry for entry in row["changes"]["diff"]}
    assert (diff["email"]["old"], diff["email"]["new"]) == (ERASED, ERASED)
    assert (diff["plan"]["old"], diff["plan"]["new"]) == ("free", "pro")
    assert row["metadata"] == {"customer": {"name": ERASED, "tier": "gold"}, "source": "crm"}
    assert (row["action"], row["resource_type"], row["resource_id"]) == ("update", "contact", "c-1")
    assert "alice" not in json.dumps(row)


class TestAccess:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        assert (await client.post(f"{SUBJECTS}/alice/erase")).status_code == 401
        assert (await client.get(f"{SUBJECTS}/config")).status_code == 401

    async def test_missing_scope(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        headers = {"X-API-Key": await create_key(client, tenant, ["read", "write"])}
        assert (await client.post(f"{SUBJECTS}/alice/erase", headers=headers)).status_code == 403
        body = {"fields": ["user_id"]}
        response = await client.put(f"{SUBJECTS}/config", json=body, headers=headers)
        assert response.status_code == 403

    async def test_bad_paths(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        body = {"fields": ["user_id", "changes.diff"]}
        response = await client.put(f"{SUBJECTS}/config", json=body, headers=tenant.headers)
        assert response.status_code == 422
        assert first_error(response).startswith("fields.1")
        body = {"fields": ["user_id"], "subject_path": "action"}
        response = await client.put(f"{SUBJECTS}/config", json=body, headers=tenant.headers)
        assert response.status_code == 422 and "subject_path" in first_error(response)


async def streamed(app: Any, tenant: TenantHandle) -> list[dict[str, Any]]:
    """The tenant's live-stream audit events of contact c-1, as a stream reader gets them."""
    events = await app.state.stream_hub.read(UUID(tenant.id), 0, 1000)
    payloads = [json.loads(e.payload) for e in events if e.kind == "audit"]
    return [p for p in payloads if p["resource_id"] == "c-1"]


async def test_erasure_keeps_the_proofs(
    app: Any,
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    engine: AsyncEngine,
) -> None:
    await declare(client, tenant)
    await record(client, tenant)
    reader = {"X-API-Key": await create_key(client, tenant, ["read"])}
    live = await streamed(app, tenant)
    assert [e["user_id"] for e in live] == ["alice", "alice"]
    assert live[0]["changes"]["before"]["email"] == "alice@example.com"
    assert "sealed" not in live[0]

    # before erasure: plaintext for readers, and the digested user_id still filters
    alice = await listed(client, reader, user_id="alice")
    assert [row["changes"]["after"]["email"] for row in alice] == [
        "alice@third.example.com",
        "alice@new.example.com",
    ]
    assert alice[0]["ip_address"] == "203.0.113.7" and alice[0]["user_id"] == "alice"
    assert alice[0]["metadata"]["customer"]["name"] == "alice name"

    # another tenant cannot erase her
    response = await client.post(f"{SUBJECTS}/alice/erase", headers=other_tenant.headers)
    assert response.status_code == 404

    erased = await client.post(f"{SUBJECTS}/alice/erase", headers=tenant.headers)
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"] is True
    again = await client.post(f"{SUBJECTS}/alice/erase", headers=tenant.headers)
    assert again.status_code == 200 and again.json()["erased"] is False
    assert "already erased" in again.json()["detail"]
    unknown = await client.post(f"{SUBJECTS}/carol/erase", headers=tenant.headers)
    assert unknown.status_code == 404 and "carol" in unknown.json()["detail"]

    # every route shows alice's fields erased
    rows = await listed(client, reader, user_id="alice")
    assert len(rows) == 2
    for row in rows:
        assert_erased(row)
        one = await client.get(f"{AUDITS}/{row['id']}", headers=reader)
        assert_erased(one.json())
    trail = await client.get(f"{AUDITS}/resource/contact/c-1", headers=reader)
    assert [r["sequence"] for r in trail.json()] == sorted(r["sequence"] for r in rows)
    for row in trail.json():
        assert_erased(row)
    state = await client.get(
        f"{AUDITS}/resource/contact/c-1/state", params={"at": utcnow().isoformat()}, headers=reader
    )
    assert state.json()["state"] == {"email": ERASED, "plan": "pro"}
    timeline = await client.get(
        "/api/v1/logs/timeline", params={"correlation_id": "inc-c-1"}, headers=reader
    )
    assert timeline.status_code == 200, timeline.text
    assert "alice" not in timeline.text and ERASED in timeline.text

    # bob and the event without a subject are untouched
    (bob,) = await listed(client, reader, user_id="bob")
    assert bob["user_id"] == "bob" and bob["changes"]["before"]["email"] == "bob@example.com"
    assert bob["metadata"]["customer"]["name"] == "bob name"
    everything = await listed(client, reader, limit=1000)
    nobody = [r for r in everything if r["resource_id"] == "c-3"]
    assert nobody[0]["changes"]["after"]["email"] == "none@example.com"

    # the erasure is audited, naming the subject by reference only
    (audit,) = await listed(client, reader, action="erase")
    assert audit["resource_type"] == "data_subject"
    assert audit["resource_id"] == erased.json()["reference"]
    assert "alice" not in json.dumps(audit)

    # the chain verifies; every event's proof verifies against the signed head
    verified = await client.get(f"{AUDITS}/verify", headers=reader)
    assert verified.json()["valid"] is True, verified.text
    head = (await client.get(f"{AUDITS}/tree-head", headers=reader)).json()
    key = (await client.get(f"{AUDITS}/public-key", headers=reader)).json()["public_key"]
    assert head_signed(head, key)
    size, root = head["tree_size"], head["root_hash"]
    for row in everything:
        proof = await client.get(
            f"{AUDITS}/{row['id']}/proof", params={"tree_size": size}, headers=reader
        )
        data = bytes.fromhex(row["hash"])
        assert inclusion_holds(
            data, proof.json()["leaf_index"], size, proof.json()["audit_path"], root
        )

    # the live stream shows her fields erased, and never stored their values
    for row in await streamed(app, tenant):
        assert_erased(row)
    async with tenant_connection(engine, UUID(tenant.id)) as connection:  # as stored
        events = await events_after(connection, UUID(tenant.id), 0, 10_000)
    payloads = [event.payload for event in events]
    assert any('"resource_id":"c-1"' in p for p in payloads)
    leaks = [p for p in payloads if "alice" in p or "bob@" in p or "203.0.113.7" in p]
    assert leaks == []

    # the other tenant sees nothing of this
    config = await client.get(f"{SUBJECTS}/config", headers=other_tenant.headers)
    assert config.json() == {"fields": [], "subject_path": "user_id"}


async def test_archives_verify_after_erasure(retained: Retained) -> None:
    client = retained.client
    tenant = await create_tenant(client, "Archived Co")
    await set_policy(client, tenant, audit_retention_days=30)
    await declare(client, tenant)
    await record(client, tenant)
    moment = utcnow()
    done = await retained.scheduler.run_once(now=later(moment, 31))
    assert done is not None
    response = await client.post(f"{SUBJECTS}/alice/erase", headers=tenant.headers)
    assert response.status_code == 200, response.text
    keys = (await client.get(f"{AUDITS}/public-key", headers=tenant.headers)).json()
    reports = verify_archives([retained.archive_dir / tenant.id], keys["public_key"])
    assert reports and all(r.valid for r in reports), [r.problems for r in reports]
    archived = b"".join(
        gzip.decompress(path.read_bytes())
        for path in (retained.archive_dir / tenant.id).rglob("*.ndjson.gz")
    )
    assert b"alice@" not in archived and b"bob@" not in archived and b"203.0.113.7" not in archived


async def test_resource_id_as_the_subject(
    client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    body = {"fields": ["resource_id", "metadata.email"], "subject_path": "resource_id"}
    response = await client.put(f"{SUBJECTS}/config", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    for n in range(2):
        event = {
            "action": "create" if n == 0 else "update",
            "resource_type": "account",
            "resource_id": "acct-1",
            "after": {"plan": f"p{n}"},
            "metadata": {"email": "owner@example.com", "n": n},
        }
        created = await client.post(AUDITS, json=event, headers=tenant.headers)
        assert created.status_code == 201, created.text
    # filters and the trail match the digested resource_id
    assert len(await listed(client, tenant.headers, resource_id="acct-1")) == 2
    trail = await client.get(f"{AUDITS}/resource/account/acct-1", headers=tenant.headers)
    assert [r["metadata"]["email"] for r in trail.json()] == ["owner@example.com"] * 2
    # another tenant neither sees nor erases it
    other = await client.get(f"{AUDITS}/resource/account/acct-1", headers=other_tenant.headers)
    assert other.json() == [] or other.status_code == 404
    response = await client.post(f"{SUBJECTS}/acct-1/erase", headers=other_tenant.headers)
    assert response.status_code == 404

    assert (
        await client.post(f"{SUBJECTS}/acct-1/erase", headers=tenant.headers)
    ).status_code == 200
    trail = await client.get(f"{AUDITS}/resource/account/acct-1", headers=tenant.headers)
    assert [(r["resource_id"], r["metadata"]) for r in trail.json()] == [
        (ERASED, {"email": ERASED, "n": 0}),
        (ERASED, {"email": ERASED, "n": 1}),
    ]
    assert [r["changes"]["after"] for r in trail.json()] == [{"plan": "p0"}, {"plan": "p1"}]
