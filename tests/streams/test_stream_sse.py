"""GET /api/v1/logs/stream: live events, their shape, filters, resume, limits, isolation."""

import asyncio
from typing import Any
from uuid import UUID

import httpx
import pytest

from app.proofs.scheduler import keep_head
from tests.conftest import TenantHandle, create_key
from tests.live import sse
from tests.proofs.rfc9162 import head_signed

ACTIONS = "/api/v1/logs/actions"
AUDITS = "/api/v1/logs/audits"
STREAM = "/api/v1/logs/stream"


async def post_action(client: httpx.AsyncClient, tenant: TenantHandle, **body: Any) -> Any:
    response = await client.post(
        ACTIONS, json={"action_type": "crm_create", **body}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def post_audit(
    client: httpx.AsyncClient, tenant: TenantHandle, resource_id: str, **body: Any
) -> Any:
    response = await client.post(
        AUDITS,
        json={"action": "create", "resource_type": "doc", "resource_id": resource_id, **body},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


class TestStreamAccess:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        response = await client.get(STREAM)
        assert response.status_code == 401

    async def test_missing_scope(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        key = await create_key(client, tenant, ["write"])
        response = await client.get(STREAM, headers={"X-API-Key": key})
        assert response.status_code == 403
        assert "read" in response.json()["detail"]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"kinds": "action,nope"}, "kinds"),
            ({"status": "exploded"}, "status"),
            ({"last_event_id": "abc"}, "last_event_id"),
            ({"last_event_id": "-1"}, "last_event_id"),
        ],
    )
    async def test_bad_input(
        self, client: httpx.AsyncClient, tenant: TenantHandle, params: dict[str, str], field: str
    ) -> None:
        response = await client.get(STREAM, params=params, headers=tenant.headers)
        assert response.status_code == 422, response.text
        assert field in response.text

    async def test_resume_beyond_the_newest_event(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        response = await client.get(STREAM, headers={**tenant.headers, "Last-Event-ID": "999999"})
        assert response.status_code == 422
        assert "beyond the newest event" in response.json()["detail"]


async def test_live_events_in_the_list_shape(
    live_url: str, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    async with sse(live_url, tenant.key) as stream:
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert stream.response.headers["cache-control"] == "no-cache"
        assert stream.response.headers["x-accel-buffering"] == "no"
        created = await post_action(client, tenant, status="in_progress", provider_name="hubspot")
        audit = await client.post(
            AUDITS,
            json={"action": "update", "resource_type": "contact", "resource_id": "7",
                  "before": {"a": 1}, "after": {"a": 2}, "user_id": "u-1"},
            headers=tenant.headers,
        )  # fmt: skip
        assert audit.status_code == 201
        step = await client.post(
            f"{ACTIONS}/{created['id']}/steps",
            json={"step": "upload", "status": "done"},
            headers=tenant.headers,
        )
        assert step.status_code == 201
        done = await client.patch(
            f"{ACTIONS}/{created['id']}", json={"status": "completed"}, headers=tenant.headers
        )
        assert done.status_code == 200
        events = await stream.events(4)
    assert [e.event for e in events] == ["action", "audit", "action", "action"]
    ids = [int(e.id or 0) for e in events]
    assert ids == list(range(ids[0], ids[0] + 4))
    listed = (await client.get(ACTIONS, headers=tenant.headers)).json()[0]
    assert events[3].json() == listed  # the list route's record, byte for byte the same JSON
    assert events[0].json()["status"] == "in_progress"
    assert events[3].json()["status"] == "success"
    audits = (await client.get(AUDITS, headers=tenant.headers)).json()
    assert events[1].json() == audits[0]
    # read back later, each event still shows the action as it was then, under its number
    resume = {"Last-Event-ID": str(ids[0] - 1)}
    async with sse(live_url, tenant.key, headers=resume) as stream:
        again = await stream.events(4)
    assert [(e.id, e.event, e.json()) for e in again] == [(e.id, e.event, e.json()) for e in events]


async def test_filters_and_kinds(
    live_url: str, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    params = [("status", "failed"), ("status", "timeout"), ("provider_name", "zendesk")]
    async with sse(live_url, tenant.key, params=[*params, ("kinds", "action")]) as failed:
        await post_action(client, tenant, status="failed", provider_name="hubspot")
        await post_action(client, tenant, status="completed", provider_name="zendesk")
        wanted = await post_action(client, tenant, status="timeout", provider_name="zendesk")
        events = await failed.events(1)
        assert events[0].json()["id"] == wanted["id"]
        assert await failed.quiet(0.5) == []
    async with sse(live_url, tenant.key, params={"kinds": "audit", "user_id": "u-9"}) as audits:
        await post_action(client, tenant, user_id="u-9")
        for user in ("u-8", "u-9"):
            response = await client.post(
                AUDITS,
                json={"action": "create", "resource_type": "doc", "resource_id": user,
                      "user_id": user},
                headers=tenant.headers,
            )  # fmt: skip
            assert response.status_code == 201
        events = await audits.events(1)
        assert events[0].event == "audit"
        assert events[0].json()["resource_id"] == "u-9"


async def test_reconnect_after_20_missed_events_yields_exactly_those(
    live_url: str, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    async with sse(live_url, tenant.key) as stream:
        await post_action(client, tenant, action_name="seen")
        (seen,) = await stream.events(1)
    missed = [(await post_action(client, tenant, action_name=f"m{n}"))["id"] for n in range(20)]
    async with sse(live_url, tenant.key, headers={"Last-Event-ID": seen.id or ""}) as stream:
        events = await stream.events(20)
        assert [e.json()["id"] for e in events] == missed
        assert [int(e.id or 0) for e in events] == list(
            range(int(seen.id or 0) + 1, int(seen.id or 0) + 21)
        )
        assert await stream.quiet(0.3) == []
        live = await post_action(client, tenant, action_name="live")
        (after,) = await stream.events(1)
        assert after.json()["id"] == live["id"]
    # the query parameter works too, and the header wins over it
    params = {"last_event_id": str(int(seen.id or 0) + 18)}
    async with sse(live_url, tenant.key, params=params) as stream:
        names = [e.json()["action_name"] for e in await stream.events(3)]
        assert names == ["m18", "m19", "live"]
    headers = {"Last-Event-ID": str(int(seen.id or 0) + 19)}
    async with sse(live_url, tenant.key, params={"last_event_id": "0"}, headers=headers) as stream:
        names = [e.json()["action_name"] for e in await stream.events(2)]
        assert names == ["m19", "live"]


async def test_batch_events_arrive_in_order(
    live_url: str, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    async with sse(live_url, tenant.key) as stream:
        batch = [{"action_type": "bulk", "action_name": f"b{n}"} for n in range(50)]
        response = await client.post(f"{ACTIONS}/batch", json=batch, headers=tenant.headers)
        assert response.status_code == 201
        events = await stream.events(50)
    assert [e.json()["id"] for e in events] == response.json()["ids"]


async def test_another_tenants_events_never_arrive(
    live_url: str, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    async with sse(live_url, other_tenant.key) as theirs, sse(live_url, tenant.key) as ours:
        await post_action(client, tenant, action_name="ours")
        (mine,) = await ours.events(1)
        assert mine.json()["tenant_id"] == tenant.id
        assert await theirs.quiet(0.5) == []
    # an event id of another tenant's stream means nothing in this one
    response = await client.get(
        STREAM, headers={**other_tenant.headers, "Last-Event-ID": str(int(mine.id or 0) + 5)}
    )
    assert response.status_code == 422


async def test_at_most_stream_max_per_key(
    live_url: str, client: httpx.AsyncClient, tenant: TenantHandle, app: Any
) -> None:
    limit = app.state.settings.stream_max_per_key
    key = await create_key(client, tenant, ["read"])
    streams = [sse(live_url, key) for _ in range(limit)]
    opened = [await s.__aenter__() for s in streams]
    try:
        async with httpx.AsyncClient(base_url=live_url) as http:
            refused = await http.get(STREAM, headers={"X-API-Key": key})
        assert refused.status_code == 429
        assert "STREAM_MAX_PER_KEY" in refused.json()["detail"]
        assert refused.headers["retry-after"]
        async with sse(live_url, tenant.key):  # another key of the tenant is not affected
            pass
    finally:
        for s in reversed(streams):
            await s.__aexit__(None, None, None)
    assert len(opened) == limit
    for _ in range(50):  # leases are released in the background
        async with (
            httpx.AsyncClient(base_url=live_url) as http,
            http.stream("GET", STREAM, headers={"X-API-Key": key}) as again,
        ):
            if again.status_code == 200:
                break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("a closed stream's lease was not released")


async def test_pruned_events_answer_410(
    client: httpx.AsyncClient, tenant: TenantHandle, engine: Any
) -> None:
    from datetime import timedelta
    from uuid import UUID

    from sqlalchemy import update

    from app.actions.models import ActionLog
    from app.core.db import utcnow
    from app.streams.retention import prune_once

    first = await post_action(client, tenant, action_name="old")
    await post_action(client, tenant, action_name="new")
    async with engine.begin() as connection:  # the action's row is its event: made old
        await connection.execute(
            update(ActionLog)
            .where(ActionLog.tenant_id == UUID(tenant.id), ActionLog.id == UUID(first["id"]))
            .values(updated_at=utcnow() - timedelta(hours=48))
        )
    await prune_once(engine, 24)
    gone = await client.get(STREAM, headers={**tenant.headers, "Last-Event-ID": "1"})
    assert gone.status_code == 410
    assert "STREAM_RETENTION_HOURS" in gone.json()["detail"]


async def test_leases_of_a_vanished_worker_expire(
    live_url: str, client: httpx.AsyncClient, tenant: TenantHandle, engine: Any, app: Any
) -> None:
    from datetime import timedelta
    from uuid import UUID

    from sqlalchemy import insert, select

    from app.core.db import new_id, utcnow
    from app.streams.models import StreamLease
    from app.streams.repository import renew_leases
    from tests.conftest import ADMIN

    created = await client.post(
        f"/api/v1/admin/tenants/{tenant.id}/keys",
        json={"name": "dash", "scopes": ["read"]},
        headers=ADMIN,
    )
    key, key_id = created.json()["key"], UUID(created.json()["id"])
    limit = app.state.settings.stream_max_per_key

    async def leave_leases(expires_in: timedelta) -> list[UUID]:
        ids = [new_id() for _ in range(limit)]
        async with engine.begin() as connection:
            await connection.execute(
                insert(StreamLease),
                [
                    {"tenant_id": UUID(tenant.id), "id": i, "key_id": key_id,
                     "expires_at": utcnow() + expires_in}
                    for i in ids
                ],
            )  # fmt: skip
        return ids

    await leave_leases(timedelta(seconds=-1))  # a worker died: its leases ran out
    async with sse(live_url, key):
        pass
    live = await leave_leases(timedelta(seconds=0.5))
    async with httpx.AsyncClient(base_url=live_url) as http:
        assert (await http.get(STREAM, headers={"X-API-Key": key})).status_code == 429
        async with engine.begin() as connection:  # what a live worker does every 20 s
            later = utcnow() + timedelta(seconds=60)
            await renew_leases(connection, [(UUID(tenant.id), i) for i in live], later)
            renewed = (
                (
                    await connection.execute(
                        select(StreamLease.expires_at).where(StreamLease.id.in_(live))
                    )
                )
                .scalars()
                .all()
            )
        assert all(at > utcnow() + timedelta(seconds=30) for at in renewed)
        assert (await http.get(STREAM, headers={"X-API-Key": key})).status_code == 429


async def test_audit_events_match_a_correlation_id(
    live_url: str, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    params = {"correlation_id": "inc-55"}
    async with sse(live_url, tenant.key, params=params) as stream:
        for correlation in (None, "inc-54", "inc-55"):
            body = {"action": "create", "resource_type": "deal", "resource_id": str(correlation),
                    "correlation_id": correlation}  # fmt: skip
            response = await client.post(AUDITS, json=body, headers=tenant.headers)
            assert response.status_code == 201, response.text
        wanted = await post_action(client, tenant, correlation_id="inc-55")
        events = await stream.events(2)
        assert [e.event for e in events] == ["audit", "action"]
        assert events[0].json()["correlation_id"] == "inc-55"
        assert events[1].json()["id"] == wanted["id"]


async def test_tree_heads_only_when_asked_for(
    app: Any, live_url: str, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    await post_audit(client, tenant, "before the head")
    public_key = (await client.get(f"{AUDITS}/public-key", headers=tenant.headers)).json()
    heads_only = {"kinds": "tree_head"}
    async with (
        sse(live_url, tenant.key, params=heads_only) as heads,
        sse(live_url, tenant.key) as default,
    ):
        head = await keep_head(app.state.sessionmaker, app.state.signer, UUID(tenant.id))
        assert head is not None
        after = await post_action(client, tenant, action_name="after the head")
        (event,) = await heads.events(1)
        assert event.event == "tree_head" and event.json() == head.as_json()
        assert head_signed(event.json(), public_key["public_key"])
        # the default kinds (action, audit) pass the head over: the next event is the action
        (first,) = await default.events(1)
        assert first.json()["id"] == after["id"]
        assert int(first.id or 0) == int(event.id or 0) + 1
    # on resume too; field filters do not narrow a head (it is no one's record)
    params = {**heads_only, "user_id": "someone", "status": "failed"}
    resume = {"Last-Event-ID": str(int(event.id or 0) - 1)}
    async with sse(live_url, tenant.key, params=params, headers=resume) as resumed:
        (again,) = await resumed.events(1)
        assert (again.id, again.json()) == (event.id, head.as_json())


async def test_user_id_matches_sealed_audit_events_live_and_on_resume(
    live_url: str, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    personal = {"fields": ["user_id", "ip_address"]}
    declared = await client.put("/api/v1/subjects/config", json=personal, headers=tenant.headers)
    assert declared.status_code == 200, declared.text
    params = {"kinds": "audit", "user_id": "alice"}
    async with sse(live_url, tenant.key, params=params) as stream:
        for n, user in enumerate(("alice", "bob", "alice")):
            await post_audit(client, tenant, f"{user}-{n}", user_id=user, ip_address="203.0.113.9")
        events = await stream.events(2)
    assert [e.json()["resource_id"] for e in events] == ["alice-0", "alice-2"]
    assert {(e.json()["user_id"], e.json()["ip_address"]) for e in events} == {
        ("alice", "203.0.113.9")
    }
    assert int(events[1].id or 0) == int(events[0].id or 0) + 2  # bob's between them
    resume = {"Last-Event-ID": str(int(events[0].id or 0) - 1)}
    async with sse(live_url, tenant.key, params=params, headers=resume) as resumed:
        again = await resumed.events(2)
    assert [(e.id, e.json()) for e in again] == [(e.id, e.json()) for e in events]
