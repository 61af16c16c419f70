"""Delivery by the application's own sender to real receivers: each type's format, order,
filters, pause and resume, a receiver that goes away and comes back, `failing`, isolation,
and stream pruning that keeps what a destination still needs."""

import gzip
import io
import itertools
import json
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pyarrow.parquet as pq
from sqlalchemy import func, select, update
from standardwebhooks import Webhook

from app.actions.models import ActionLog
from app.core.db import utcnow
from app.destinations.repository import stream_holds
from app.destinations.sender import DestinationWorker
from app.streamlog.models import StreamEvent, StreamHead
from app.streams.events import events_after
from app.streams.retention import prune_once
from tests.conftest import TenantHandle
from tests.destinations.conftest import (
    HttpReceiver,
    Rsyslog,
    S3Server,
    create_destination,
    in_order_complete,
    wait_until,
    write_actions,
    write_audits,
)

API = "/api/v1/destinations"


async def stream_ids(engine: Any, tenant: TenantHandle, kinds: tuple[str, ...]) -> list[int]:
    """The numbers of the tenant's stream events of these kinds, wherever each is kept."""
    async with engine.connect() as connection:
        events = await events_after(connection, UUID(tenant.id), 0, 100_000)
    return [event.seq for event in events if event.kind in kinds]


async def stream_state(engine: Any, tenant: TenantHandle) -> tuple[int, int]:
    """The tenant's last stream number, and how far its stream has been pruned."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(StreamHead.seq, StreamHead.pruned_through).where(
                    StreamHead.tenant_id == UUID(tenant.id)
                )
            )
        ).one()
    return row.seq, row.pruned_through


async def age_stream(engine: Any, tenant: TenantHandle, hours: int) -> None:
    """Make every event of the tenant's stream `hours` old: its stream rows and its actions'
    rows (an action's row is its latest event)."""
    when = utcnow() - timedelta(hours=hours)
    async with engine.begin() as connection:
        await connection.execute(
            update(StreamEvent)
            .where(StreamEvent.tenant_id == UUID(tenant.id))
            .values(created_at=when)
        )
        await connection.execute(
            update(ActionLog).where(ActionLog.tenant_id == UUID(tenant.id)).values(updated_at=when)
        )


async def destination(client: httpx.AsyncClient, tenant: TenantHandle, id_: str) -> Any:
    return (await client.get(f"{API}/{id_}", headers=tenant.headers)).json()


async def test_http_records_arrive_signed_in_order_and_only_the_tenants(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    http_receiver: HttpReceiver,
    engine: Any,
) -> None:
    created = await create_destination(
        client, tenant, type="http", config={"url": http_receiver.url + "/in"}
    )
    await write_actions(client, other_tenant, 5, action_name="theirs")
    await write_actions(client, tenant, 150)
    await write_audits(client, tenant, 5)
    await write_actions(client, other_tenant, 5, action_name="theirs")
    expected = [s for s in await stream_ids(engine, tenant, ("action", "audit"))]
    expected = [s for s in expected if s > created["delivered_through"]]

    def arrived() -> bool:
        ids = [r["stream_id"] for r in http_receiver.webhook_records()]
        return in_order_complete(ids, expected)

    await wait_until(arrived)
    hook = Webhook(created["secret"])
    for request in http_receiver.requests:
        hook.verify(request.body, request.headers)  # raises on a bad signature
    records = http_receiver.webhook_records()
    assert all(r.get("action_name") != "theirs" for r in records)
    assert {r["kind"] for r in records} == {"action", "audit"}
    audit = next(r for r in records if r["kind"] == "audit")
    assert audit["resource_type"] in ("case", "destination")
    state = await wait_until(
        lambda: _caught_up(client, tenant, created["id"], expected[-1]), within=10
    )
    assert state["last_success_at"] is not None and state["state"] == "active"
    metrics = (await client.get("/metrics")).text
    assert 'actionlog_destination_records_delivered_total{type="http"}' in metrics
    assert f'actionlog_destination_lag_events{{destination="{created["id"]}"}}' in metrics


async def _caught_up(client: httpx.AsyncClient, tenant: TenantHandle, id_: str, seq: int) -> Any:
    found = await destination(client, tenant, id_)
    return found if found["delivered_through"] >= seq else None


async def test_splunk_and_datadog_bodies_follow_their_formats(
    client: httpx.AsyncClient, tenant: TenantHandle, http_receiver: HttpReceiver
) -> None:
    await create_destination(
        client,
        tenant,
        type="splunk_hec",
        config={"url": http_receiver.url, "token": "hec-1", "index": "audit", "sourcetype": "al"},
        kinds=["action"],
    )
    await create_destination(
        client,
        tenant,
        type="datadog",
        config={"url": http_receiver.url, "api_key": "dd-1", "service": "svc", "tags": ["env:t"]},
        kinds=["action"],
    )
    await write_actions(client, tenant, 3, user_id="u9")

    def by_path(path: str) -> list[Any]:
        return [r for r in http_receiver.requests if r.path == path]

    await wait_until(
        lambda: by_path("/services/collector/event") and by_path("/api/v2/logs"), within=30
    )
    splunk = by_path("/services/collector/event")[0]
    assert splunk.headers["authorization"] == "Splunk hec-1"
    events = [json.loads(line) for line in splunk.body.splitlines()]
    for event in events:
        assert set(event) == {"time", "host", "source", "sourcetype", "index", "event"}
        assert isinstance(event["time"], float) and event["index"] == "audit"
        assert event["sourcetype"] == "al" and event["source"] == "actionlog"
        assert event["event"]["kind"] == "action" and event["event"]["user_id"] == "u9"
    datadog = by_path("/api/v2/logs")[0]
    assert datadog.headers["dd-api-key"] == "dd-1"
    entries = json.loads(datadog.body)
    for entry in entries:
        assert set(entry) == {"ddsource", "ddtags", "hostname", "service", "message"}
        assert entry["ddsource"] == "actionlog" and entry["service"] == "svc"
        assert entry["ddtags"] == "kind:action,env:t"
        assert json.loads(entry["message"])["action_type"] == "crm_create"


async def test_syslog_messages_reach_rsyslog_in_order(
    client: httpx.AsyncClient, tenant: TenantHandle, rsyslog: Rsyslog, engine: Any
) -> None:
    created = await create_destination(
        client, tenant, type="syslog", config={"host": "127.0.0.1", "port": rsyslog.port}
    )
    await write_actions(client, tenant, 40)
    await write_audits(client, tenant, 3)
    expected = [
        s
        for s in await stream_ids(engine, tenant, ("action", "audit"))
        if s > created["delivered_through"]
    ]

    def mine() -> list[tuple[str, str, dict[str, Any]]]:
        return [r for r in rsyslog.records() if r[2].get("tenant_id") == tenant.id]

    await wait_until(lambda: in_order_complete([m[2]["stream_id"] for m in mine()], expected))
    for app_name, msgid, record in mine():
        assert app_name == "actionlog" and msgid == record["kind"]


async def test_s3_objects_in_ndjson_and_parquet(
    client: httpx.AsyncClient, tenant: TenantHandle, s3_server: S3Server, engine: Any
) -> None:
    ndjson = s3_server.bucket(f"nd-{tenant.id[-12:]}")
    parquet = s3_server.bucket(f"pq-{tenant.id[-12:]}")
    first = await create_destination(
        client, tenant, type="s3", config=s3_server.config(ndjson, prefix="logs/")
    )
    await create_destination(
        client, tenant, type="s3", config=s3_server.config(parquet, format="parquet")
    )
    await write_actions(client, tenant, 30)
    await write_audits(client, tenant, 2)
    expected = [
        s
        for s in await stream_ids(engine, tenant, ("action", "audit"))
        if s > first["delivered_through"]
    ]
    await wait_until(
        lambda: (
            [r["stream_id"] for r in s3_server.records(ndjson)][: len(expected)] == expected
            and [r["stream_id"] for r in s3_server.records(parquet)][-1] >= expected[-1]
        ),
        within=30,
        every=0.5,
    )
    objects = s3_server.objects(ndjson)
    day = utcnow().strftime("%Y/%m/%d")
    for key, body in objects.items():
        kind = key.split("/")[1]
        assert key.startswith(f"logs/{kind}/{day}/") and key.endswith(".ndjson.gz")
        lines = [json.loads(line) for line in gzip.decompress(body).splitlines()]
        first_id, last_id = key.rsplit("/", 1)[1].removesuffix(".ndjson.gz").split("-")
        assert [lines[0]["stream_id"], lines[-1]["stream_id"]] == [int(first_id), int(last_id)]
        assert {line["kind"] for line in lines} == {kind}
    for key, body in s3_server.objects(parquet).items():
        assert key.endswith(".parquet")
        table = pq.read_table(io.BytesIO(body))
        assert table.column_names == ["stream_id", "kind", "record_id", "created_at", "record"]


async def test_paused_receives_nothing_until_resumed(
    client: httpx.AsyncClient, tenant: TenantHandle, http_receiver: HttpReceiver
) -> None:
    paused = await create_destination(
        client, tenant, type="http", config={"url": http_receiver.url + "/paused"}, state="paused"
    )
    await create_destination(
        client, tenant, type="http", config={"url": http_receiver.url + "/active"}
    )
    await write_actions(client, tenant, 10)

    def records_at(path: str) -> list[int]:
        return [
            record["stream_id"]
            for request in http_receiver.requests
            if request.path == path
            for record in json.loads(request.body)
        ]

    # the active destination got everything: the paused one, read after it, got nothing
    await wait_until(lambda: len(records_at("/active")) >= 10)
    assert records_at("/paused") == []
    resumed = await client.patch(
        f"{API}/{paused['id']}", json={"state": "active"}, headers=tenant.headers
    )
    assert resumed.json()["state"] == "active"
    await wait_until(lambda: records_at("/paused")[-10:] == records_at("/active")[-10:])


async def test_a_receiver_stopped_then_started_gets_everything_in_order(
    client: httpx.AsyncClient, tenant: TenantHandle, http_receiver: HttpReceiver, engine: Any
) -> None:
    created = await create_destination(
        client, tenant, type="http", config={"url": http_receiver.url}
    )
    await write_actions(client, tenant, 5)
    await wait_until(lambda: len(http_receiver.webhook_records()) >= 5)
    await http_receiver.stop()
    await write_actions(client, tenant, 20)
    await wait_until(lambda: _has_error(client, tenant, created["id"]), within=20, every=0.2)
    await http_receiver.start()
    expected = [
        s for s in await stream_ids(engine, tenant, ("action", "audit"))
        if s > created["delivered_through"]
    ]  # fmt: skip
    await wait_until(
        lambda: in_order_complete(
            [r["stream_id"] for r in http_receiver.webhook_records()], expected
        ),
        within=30,
    )


async def _has_error(client: httpx.AsyncClient, tenant: TenantHandle, id_: str) -> bool:
    return (await destination(client, tenant, id_))["last_error"] is not None


async def test_a_long_permanent_refusal_turns_failing_and_success_recovers(
    client: httpx.AsyncClient, tenant: TenantHandle, http_receiver: HttpReceiver, app: Any
) -> None:
    app.state.settings.destination_failing_after_seconds = 0
    http_receiver.status = 403
    try:
        created = await create_destination(
            client, tenant, type="http", config={"url": http_receiver.url}
        )
        await write_actions(client, tenant, 2)
        failing = await wait_until(
            lambda: _in_state(client, tenant, created["id"], "failing"), within=20
        )
        assert "HTTP 403" in failing["last_error"]
        http_receiver.status = 200
        await wait_until(lambda: _in_state(client, tenant, created["id"], "active"), within=30)
    finally:
        app.state.settings.destination_failing_after_seconds = 600.0
        http_receiver.status = 200


async def _in_state(client: httpx.AsyncClient, tenant: TenantHandle, id_: str, state: str) -> Any:
    found = await destination(client, tenant, id_)
    return found if found["state"] == state else None


async def test_pruning_keeps_what_a_destination_still_needs(
    client: httpx.AsyncClient, tenant: TenantHandle, http_receiver: HttpReceiver, engine: Any
) -> None:
    created = await create_destination(
        client, tenant, type="http", config={"url": http_receiver.url}, state="paused"
    )
    await write_actions(client, tenant, 3)
    await age_stream(engine, tenant, 48)
    await prune_once(engine, 24, stream_holds, 168)
    head, pruned = await stream_state(engine, tenant)
    start = created["delivered_through"]
    assert pruned <= start and head - start >= 3  # held by the paused destination
    await client.patch(f"{API}/{created['id']}", json={"state": "active"}, headers=tenant.headers)
    await wait_until(lambda: len(http_receiver.webhook_records()) >= 3)
    # past the maximum backlog, events go even when not delivered
    await client.patch(f"{API}/{created['id']}", json={"state": "paused"}, headers=tenant.headers)
    await write_actions(client, tenant, 2)
    await age_stream(engine, tenant, 200)
    await prune_once(engine, 24, stream_holds, 168)
    head, pruned = await stream_state(engine, tenant)
    assert pruned == head
    async with engine.connect() as connection:
        ours = StreamEvent.tenant_id == UUID(tenant.id)
        assert await connection.scalar(select(func.count()).where(ours)) == 0


async def test_one_sender_at_a_time_among_several_workers(
    client: httpx.AsyncClient, tenant: TenantHandle, http_receiver: HttpReceiver, app: Any
) -> None:
    state = app.state
    others = [
        DestinationWorker(
            state.engine, state.maintenance_engine, state.settings, state.destination_keys
        )
        for _ in range(2)
    ]
    for worker in others:
        worker.start()
    try:
        await create_destination(client, tenant, type="http", config={"url": http_receiver.url})
        for _ in range(6):
            await write_actions(client, tenant, 50)
        await wait_until(lambda: len(http_receiver.webhook_records()) >= 300)
    finally:
        for worker in others:
            await worker.close()
    batches = [
        tuple(int(n) for n in r.headers["webhook-id"].removeprefix("msg_").split("_"))
        for r in http_receiver.requests
    ]
    # batches follow each other without overlap: no two senders ever sent at once
    for (_, last), (first, _) in itertools.pairwise(batches):
        assert first > last, batches


async def test_retry_after_is_honoured(
    client: httpx.AsyncClient, tenant: TenantHandle, http_receiver: HttpReceiver
) -> None:
    http_receiver.script = [429]
    http_receiver.headers = [(b"retry-after", b"2")]
    await create_destination(client, tenant, type="http", config={"url": http_receiver.url})
    await write_actions(client, tenant, 1)
    await wait_until(lambda: len(http_receiver.requests) >= 1, within=20)
    (refused_at, refused), (accepted_at, accepted) = http_receiver.attempts[:2]
    assert (refused, accepted) == (429, 200)
    assert accepted_at - refused_at >= 2.0


async def test_a_user_id_filter_matches_sealed_audit_events(
    client: httpx.AsyncClient, tenant: TenantHandle, http_receiver: HttpReceiver
) -> None:
    personal = {"fields": ["user_id"]}
    declared = await client.put("/api/v1/subjects/config", json=personal, headers=tenant.headers)
    assert declared.status_code == 200, declared.text
    await create_destination(
        client, tenant, type="http", config={"url": http_receiver.url}, kinds=["audit"],
        user_id="alice",
    )  # fmt: skip
    for n, user in enumerate(("alice", "bob", "alice")):
        response = await client.post(
            "/api/v1/logs/audits",
            json={"user_id": user, "action": "view", "resource_type": "case",
                  "resource_id": f"{user}-{n}"},
            headers=tenant.headers,
        )  # fmt: skip
        assert response.status_code == 201, response.text

    def alices() -> list[dict[str, Any]]:
        records = http_receiver.webhook_records()
        return records if len(records) >= 2 else []

    # bob's event lies between alice's two: once the second arrived, his was passed over
    records = await wait_until(alices)
    assert [r["resource_id"] for r in records] == ["alice-0", "alice-2"]
    # delivered as readers see them: the sealed field opened, the ciphertext left out
    assert all(r["user_id"] == "alice" and "sealed" not in r for r in records)


async def test_an_erased_subject_reaches_a_destination_erased(
    client: httpx.AsyncClient, tenant: TenantHandle, http_receiver: HttpReceiver
) -> None:
    personal = {"fields": ["user_id", "changes.after.email"]}
    declared = await client.put("/api/v1/subjects/config", json=personal, headers=tenant.headers)
    assert declared.status_code == 200, declared.text
    destination = await create_destination(
        client, tenant, type="http", config={"url": http_receiver.url}, kinds=["audit"]
    )
    paused = await client.patch(
        f"/api/v1/destinations/{destination['id']}", json={"state": "paused"},
        headers=tenant.headers,
    )  # fmt: skip
    assert paused.status_code == 200, paused.text
    for user in ("carol", "dave"):
        response = await client.post(
            "/api/v1/logs/audits",
            json={"user_id": user, "action": "update", "resource_type": "contact",
                  "resource_id": f"c-{user}", "after": {"email": f"{user}@example.com"}},
            headers=tenant.headers,
        )  # fmt: skip
        assert response.status_code == 201, response.text
    erased = await client.post("/api/v1/subjects/carol/erase", headers=tenant.headers)
    assert erased.status_code == 200, erased.text
    resumed = await client.patch(
        f"/api/v1/destinations/{destination['id']}", json={"state": "active"},
        headers=tenant.headers,
    )  # fmt: skip
    assert resumed.status_code == 200, resumed.text

    def contacts() -> dict[str, dict[str, Any]]:
        records = http_receiver.webhook_records()
        found = {r["resource_id"]: r for r in records if r.get("resource_type") == "contact"}
        return found if len(found) == 2 else {}

    found = await wait_until(contacts)
    # erased before delivery: her fields read [ERASED]; his, still keyed, read as written
    assert found["c-carol"]["user_id"] == "[ERASED]"
    assert found["c-carol"]["changes"]["after"]["email"] == "[ERASED]"
    assert found["c-dave"]["user_id"] == "dave"
    assert found["c-dave"]["changes"]["after"]["email"] == "dave@example.com"
    assert all("sealed" not in r for r in found.values())
    assert "carol@example.com" not in json.dumps(http_receiver.webhook_records())
