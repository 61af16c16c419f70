"""The Merkle log over a tenant's audit events, checked by the tests' own RFC 9162 verifier.

One tenant with 1,000 recorded events (in batches of several sizes, so that appends cross
subtree boundaries) per backend: every event's proof verifies against the signed tree head,
the root is the tests' own MTH of the chain hashes, consistency proofs hold between 20 pairs
of sizes, and a changed event, a reordered pair, a forged head or a changed stored node fail.
"""

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import update

from app.audits.models import AuditMerkleNode
from app.core.auth import Actor
from tests.conftest import TenantHandle, create_key, create_tenant
from tests.proofs.rfc9162 import consistency_holds, head_signed, inclusion_holds, mth

AUDITS = "/api/v1/logs/audits"
BATCHES = (1, 1, 2, 5, 31, 64, 100, 300, 496)  # 1,000 events


@dataclass
class Log:
    client: httpx.AsyncClient
    tenant: TenantHandle
    events: list[dict[str, Any]]  # in sequence order
    head: dict[str, Any]
    public_key: str

    @property
    def leaves(self) -> list[bytes]:
        return [bytes.fromhex(event["hash"]) for event in self.events]


async def all_events(client: httpx.AsyncClient, tenant: TenantHandle) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        response = await client.get(AUDITS, params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        rows += response.json()
        cursor = response.headers.get("x-next-cursor")
        if cursor is None:
            return sorted(rows, key=lambda row: row["sequence"])


async def record(client: httpx.AsyncClient, tenant: TenantHandle, count: int, tag: str) -> None:
    events = [
        {
            "action": "update",
            "resource_type": "contact",
            "resource_id": f"{tag}-{i}",
            "user_id": f"user-{i % 7}",
            "before": {"n": i},
            "after": {"n": i + 1},
        }
        for i in range(count)
    ]
    response = await client.post(f"{AUDITS}/batch", json={"events": events}, headers=tenant.headers)
    assert response.status_code == 201, response.text


async def get(client: httpx.AsyncClient, url: str, tenant: TenantHandle, **params: Any) -> Any:
    response = await client.get(url, params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
async def log(app: Any) -> AsyncIterator[Log]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        tenant = await create_tenant(client, "Merkle")
        for number, size in enumerate(BATCHES):
            await record(client, tenant, size, f"b{number}")
        events = await all_events(client, tenant)
        head = await get(client, f"{AUDITS}/tree-head", tenant)
        keys = await get(client, f"{AUDITS}/public-key", tenant)
        yield Log(client, tenant, events, head, keys["public_key"])


class TestTreeHead:
    async def test_anonymous_and_missing_scope(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        write_only = {"X-API-Key": await create_key(client, tenant, ["write"])}
        for path in ("tree-head", "tree-heads", "consistency?first=1&second=1", f"{uuid4()}/proof"):
            assert (await client.get(f"{AUDITS}/{path}")).status_code == 401, path
            assert (await client.get(f"{AUDITS}/{path}", headers=write_only)).status_code == 403

    async def test_signed_head_over_every_event(self, log: Log) -> None:
        assert len(log.events) >= 1000
        assert [e["sequence"] for e in log.events] == list(range(1, len(log.events) + 1))
        head = log.head
        assert head["tenant_id"] == log.tenant.id
        assert head["tree_size"] == len(log.events)
        assert head["root_hash"] == mth(log.leaves).hex()
        assert head["timestamp"].endswith("Z")
        assert head_signed(head, log.public_key)

    async def test_a_forged_head_fails(self, log: Log) -> None:
        for field, value in (
            ("root_hash", "00" * 32),
            ("tree_size", log.head["tree_size"] - 1),
            ("tenant_id", str(uuid4())),
            ("timestamp", "2020-01-01T00:00:00.000000Z"),
        ):
            assert not head_signed({**log.head, field: value}, log.public_key), field

    async def test_an_empty_log_has_the_empty_root(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        # a new tenant's log already holds the service's records of its creation
        head = await get(client, f"{AUDITS}/tree-head", tenant)
        events = await all_events(client, tenant)
        assert head["tree_size"] == len(events)
        assert head["root_hash"] == mth([bytes.fromhex(e["hash"]) for e in events]).hex()


class TestInclusion:
    async def test_every_event_verifies_against_the_signed_head(self, log: Log) -> None:
        size, root = log.head["tree_size"], log.head["root_hash"]
        for event in log.events:
            proof = await get(
                log.client, f"{AUDITS}/{event['id']}/proof", log.tenant, tree_size=size
            )
            assert proof["leaf_index"] == event["sequence"] - 1
            assert proof["tree_size"] == size and proof["root_hash"] == root
            data = bytes.fromhex(event["hash"])
            assert inclusion_holds(data, proof["leaf_index"], size, proof["audit_path"], root)

    async def test_proofs_in_older_trees(self, log: Log) -> None:
        picks = random.Random(7).sample(range(len(log.events)), 15)
        for index in picks:
            size = random.Random(index).randint(index + 1, len(log.events))
            event = log.events[index]
            proof = await get(
                log.client, f"{AUDITS}/{event['id']}/proof", log.tenant, tree_size=size
            )
            root = mth(log.leaves[:size]).hex()
            assert proof["root_hash"] == root
            assert inclusion_holds(log.leaves[index], index, size, proof["audit_path"], root)

    async def test_a_changed_event_or_a_reordered_pair_fails(self, log: Log) -> None:
        size, root = log.head["tree_size"], log.head["root_hash"]
        a, b = log.events[500], log.events[501]
        proof_a = await get(log.client, f"{AUDITS}/{a['id']}/proof", log.tenant)
        proof_b = await get(log.client, f"{AUDITS}/{b['id']}/proof", log.tenant)
        changed = bytearray(bytes.fromhex(a["hash"]))
        changed[0] ^= 1
        assert not inclusion_holds(bytes(changed), 500, size, proof_a["audit_path"], root)
        # the pair swapped: each event at the other's place
        assert not inclusion_holds(log.leaves[500], 501, size, proof_b["audit_path"], root)
        assert not inclusion_holds(log.leaves[501], 500, size, proof_a["audit_path"], root)
        # a path that is one step short or long
        assert not inclusion_holds(log.leaves[500], 500, size, proof_a["audit_path"][1:], root)
        assert not inclusion_holds(
            log.leaves[500], 500, size, [*proof_a["audit_path"], "00" * 32], root
        )

    async def test_a_changed_stored_node_no_longer_reaches_a_signed_root(
        self, client: httpx.AsyncClient, tenant: TenantHandle, engine: Any
    ) -> None:
        await record(client, tenant, 8, "tamper")
        events = await all_events(client, tenant)
        assert 8 < len(events) < 16
        head = await get(client, f"{AUDITS}/tree-head", tenant)
        async with engine.begin() as connection:
            await connection.execute(
                update(AuditMerkleNode)
                .where(
                    AuditMerkleNode.tenant_id == UUID(tenant.id),
                    AuditMerkleNode.level == 3,  # leaves 0-7, on the last event's path
                    AuditMerkleNode.position == 0,
                )
                .values(hash=bytes(32))
            )
        last = events[-1]
        proof = await get(client, f"{AUDITS}/{last['id']}/proof", tenant, tree_size=len(events))
        assert proof["root_hash"] != head["root_hash"]
        data = bytes.fromhex(last["hash"])
        size = len(events)
        assert not inclusion_holds(data, size - 1, size, proof["audit_path"], head["root_hash"])


class TestConsistency:
    async def test_twenty_pairs_of_sizes(self, log: Log) -> None:
        n = len(log.events)
        choose = random.Random(27)
        pairs = [(1, n), (n, n), (512, n), (1, 2), (3, 7), (64, 65)]
        while len(pairs) < 20:
            first = choose.randint(1, n)
            pairs.append((first, choose.randint(first, n)))
        for first, second in pairs:
            answer = await get(
                log.client, f"{AUDITS}/consistency", log.tenant, first=first, second=second
            )
            assert (answer["first"], answer["second"]) == (first, second)
            old, new = mth(log.leaves[:first]).hex(), mth(log.leaves[:second]).hex()
            assert consistency_holds(first, second, answer["proof"], old, new), (first, second)
            if first < second:  # another log's root does not pass
                other = mth([bytes(32), *log.leaves[1:first]]).hex()
                assert not consistency_holds(first, second, answer["proof"], other, new)

    async def test_kept_heads_are_consistent_with_each_other(
        self, app: Any, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        scheduler = app.state.tree_heads
        public_key = (await get(client, f"{AUDITS}/public-key", tenant))["public_key"]
        sizes = []
        for round_ in range(3):
            await record(client, tenant, 5 + round_, f"k{round_}")
            kept = await scheduler.run_once()
            mine = [h for h in kept if h.tenant_id == tenant.id]
            assert len(mine) == 1
            sizes.append(mine[0].tree_size)
        assert not [h for h in await scheduler.run_once() if h.tenant_id == tenant.id]
        heads = await get(client, f"{AUDITS}/tree-heads", tenant)
        assert [h["tree_size"] for h in heads] == sorted(sizes, reverse=True)
        assert all(head_signed(h, public_key) for h in heads)
        newer, older = heads[0], heads[-1]
        answer = await get(
            client,
            f"{AUDITS}/consistency",
            tenant,
            first=older["tree_size"],
            second=newer["tree_size"],
        )
        assert consistency_holds(
            older["tree_size"],
            newer["tree_size"],
            answer["proof"],
            older["root_hash"],
            newer["root_hash"],
        )
        page = await get(client, f"{AUDITS}/tree-heads", tenant, limit=1, before=sizes[-1])
        assert [h["tree_size"] for h in page] == [sizes[-2]]


class TestBadInputAndIsolation:
    async def test_sizes_out_of_range_are_named(self, log: Log) -> None:
        n = log.head["tree_size"]
        first = log.events[0]["id"]
        cases = [
            (f"{AUDITS}/consistency", {"first": 5, "second": 3}, 400, "first=5"),
            (f"{AUDITS}/consistency", {"first": 1, "second": n + 10_000}, 400, "second="),
            (f"{AUDITS}/consistency", {"first": 0, "second": 3}, 422, "first"),
            (f"{AUDITS}/{first}/proof", {"tree_size": n + 10_000}, 400, "tree_size="),
            (f"{AUDITS}/{log.events[9]['id']}/proof", {"tree_size": 5}, 400, "tree_size=5"),
            (f"{AUDITS}/not-a-uuid/proof", {}, 422, "audit_id"),
        ]
        for url, params, status, named in cases:
            response = await log.client.get(url, params=params, headers=log.tenant.headers)
            assert response.status_code == status, (url, params, response.text)
            assert named in response.text, response.text

    async def test_another_tenants_event_is_not_found(
        self, log: Log, other_tenant: TenantHandle
    ) -> None:
        event = log.events[3]
        response = await log.client.get(
            f"{AUDITS}/{event['id']}/proof", headers=other_tenant.headers
        )
        assert response.status_code == 404
        missing = await log.client.get(f"{AUDITS}/{uuid4()}/proof", headers=log.tenant.headers)
        assert missing.status_code == 404
        head = await get(log.client, f"{AUDITS}/tree-head", other_tenant)
        assert head["tenant_id"] == other_tenant.id
        assert head["tree_size"] < log.head["tree_size"]
        heads = await get(log.client, f"{AUDITS}/tree-heads", other_tenant)
        assert all(h["tenant_id"] == other_tenant.id for h in heads)


class TestAfterRetention:
    async def test_pruned_events_keep_their_proofs(
        self, app: Any, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        await record(client, tenant, 60, "old")
        events = await all_events(client, tenant)
        half = len(events) // 2
        cutoff = datetime.fromisoformat(events[half]["created_at"].replace("Z", "+00:00"))
        pruned = await app.state.pruner.prune(UUID(tenant.id), "audits", cutoff, Actor("test"))
        assert pruned.deleted == half
        gone = await client.get(f"{AUDITS}/{events[0]['id']}", headers=tenant.headers)
        assert gone.status_code == 404
        verified = await get(client, f"{AUDITS}/verify", tenant)
        assert verified["valid"], verified

        head = await get(client, f"{AUDITS}/tree-head", tenant)
        public_key = (await get(client, f"{AUDITS}/public-key", tenant))["public_key"]
        assert head_signed(head, public_key)
        size, root = head["tree_size"], head["root_hash"]
        assert size == len(events) + 1  # the prune is itself audited
        for event in events:  # the pruned half and the kept half alike
            proof = await get(client, f"{AUDITS}/{event['id']}/proof", tenant)
            data = bytes.fromhex(event["hash"])
            assert inclusion_holds(data, event["sequence"] - 1, size, proof["audit_path"], root)
        before = mth([bytes.fromhex(e["hash"]) for e in events[:half]]).hex()
        answer = await get(client, f"{AUDITS}/consistency", tenant, first=half, second=size)
        assert consistency_holds(half, size, answer["proof"], before, root)
