"""The ordering trap, slow consumers, the listener's reconnection, and several workers.

Ids taken before commit can become visible out of order; the stream's numbers cannot: a
tenant's second writer waits on the counter row until the first one has committed.
"""

import asyncio
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.recorder import Recorder, session_recorder
from app.actions.rows import RowBuilder
from app.actions.schemas import ActionCreate
from app.core.config import Settings
from app.core.db import create_engine, utcnow
from app.core.redact import PayloadRules
from app.streams.listener import APPLICATION_NAME
from app.streams.repository import StreamRepository
from app.streams.service import SlowConsumer, StreamQuery, StreamService
from tests.conftest import TenantHandle
from tests.live import sse, start_service

ACTIONS = "/api/v1/logs/actions"


def recorder(session: AsyncSession, tenant_id: UUID, settings: Settings) -> Recorder:
    """Records in `session`'s transaction, which the test commits (or not) when it chooses."""
    rows = RowBuilder(PayloadRules.from_settings(settings), utcnow)
    return session_recorder(tenant_id, rows, session)


async def test_a_reader_never_skips_an_event_committed_late(
    live_url: str, client: httpx.AsyncClient, tenant: TenantHandle, settings: Settings
) -> None:
    tenant_id = UUID(tenant.id)
    # a writer outside the service, holding its commit
    late_engine = create_engine(settings, as_owner=True)
    reader_engine = create_engine(settings, as_owner=True)
    try:
        async with reader_engine.connect() as reader:
            start = (await StreamRepository(reader, tenant_id).head()).seq
        async with sse(live_url, tenant.key) as stream:
            async with AsyncSession(late_engine) as late:
                service = recorder(late, tenant_id, settings)
                first = await service.record(ActionCreate(action_type="late", action_name="first"))
                # A second write starts after the first took its number, and must wait.
                second = asyncio.create_task(
                    client.post(ACTIONS, json={"action_type": "x", "action_name": "second"},
                                headers=tenant.headers)
                )  # fmt: skip
                await asyncio.sleep(1.0)
                assert not second.done(), "a later write committed before an earlier one"
                async with reader_engine.connect() as reader:
                    before = await StreamRepository(reader, tenant_id).after(start, 100)
                assert before == []  # nothing visible yet: a reader stays where it is
                await late.commit()
            response = await asyncio.wait_for(second, 15)
            assert response.status_code == 201
            events = await stream.events(2)
        assert [e.json()["action_name"] for e in events] == ["first", "second"]
        assert events[0].json()["id"] == str(first.body["id"])
        assert int(events[1].id or 0) == int(events[0].id or 0) + 1
        async with reader_engine.connect() as reader:
            rows = await StreamRepository(reader, tenant_id).after(start, 100)
        assert [row.seq for row in rows] == [start + 1, start + 2]
    finally:
        await late_engine.dispose()
        await reader_engine.dispose()


async def test_a_rolled_back_write_leaves_no_hole(
    client: httpx.AsyncClient, tenant: TenantHandle, settings: Settings, engine: Any
) -> None:
    tenant_id = UUID(tenant.id)
    async with engine.connect() as connection:
        start = (await StreamRepository(connection, tenant_id).head()).seq
    async with AsyncSession(engine) as session:
        await recorder(session, tenant_id, settings).record(ActionCreate(action_type="doomed"))
        await session.rollback()
    response = await client.post(ACTIONS, json={"action_type": "kept"}, headers=tenant.headers)
    assert response.status_code == 201
    async with engine.connect() as connection:
        rows = await StreamRepository(connection, tenant_id).after(start, 100)
    assert [(row.seq, row.action_type) for row in rows] == [(start + 1, "kept")]


async def test_a_slow_consumer_is_disconnected_and_resumes(
    client: httpx.AsyncClient, tenant: TenantHandle, app: Any
) -> None:
    from app.core.auth import Actor, TenantContext

    hub = app.state.stream_hub
    context = TenantContext(UUID(tenant.id), UUID(tenant.key_id), frozenset({"read"}), Actor("t"))
    service = StreamService(hub, app.state.settings.stream_max_per_key)
    cursor = await service.open(context, StreamQuery(), None)
    try:
        assert await cursor.next(0.2) == []  # caught up, now live
        limit = app.state.settings.stream_queue_events
        batch = [{"action_type": "flood"} for _ in range(1000)]
        for _ in range(limit // 1000 + 1):
            response = await client.post(f"{ACTIONS}/batch", json=batch, headers=tenant.headers)
            assert response.status_code == 201
        for _ in range(100):
            if cursor.subscription.overflowed:
                break
            await asyncio.sleep(0.05)
        assert cursor.subscription.queue.qsize() <= limit  # bounded, never more
        with pytest.raises(SlowConsumer):
            await cursor.next(1.0)
        position = cursor.position
    finally:
        cursor.close()
    head = (await hub.head(UUID(tenant.id))).seq
    resumed = await service.open(context, StreamQuery(), str(position))
    try:
        received = 0
        while events := await resumed.next(0.5):
            received += len(events)
        assert received == head - position
    finally:
        resumed.close()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_listener_reconnects_and_catches_up(
    live_url: str, client: httpx.AsyncClient, tenant: TenantHandle, database_url: str, app: Any
) -> None:
    listener = app.state.stream_hub._listener
    async with sse(live_url, tenant.key) as stream:
        await asyncio.wait_for(listener.connected.wait(), 10)
        reconnects = listener.reconnects
        dsn = make_url(database_url).set(drivername="postgresql")
        admin = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1 AND datname = current_database()",
                APPLICATION_NAME,
            )
        finally:
            await admin.close()
        # recorded while the listener is down: the catch-up read after reconnecting finds it
        await client.post(ACTIONS, json={"action_type": "while_down"}, headers=tenant.headers)
        (event,) = await stream.events(1, within=15)
        assert event.json()["action_type"] == "while_down"
        for _ in range(100):
            if listener.reconnects > reconnects and listener.connected.is_set():
                break
            await asyncio.sleep(0.1)
        assert listener.reconnects > reconnects
        await client.post(ACTIONS, json={"action_type": "after"}, headers=tenant.headers)
        (event,) = await stream.events(1)
        assert event.json()["action_type"] == "after"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_subscribers_on_every_worker_see_every_write(
    client: httpx.AsyncClient, tenant: TenantHandle, database_url: str
) -> None:
    """`actionlog serve --workers 2`: streams and writes spread over both workers (and this
    process writes too); every stream gets every event, once, in order."""
    service = await start_service(database_url, workers=2, ALERTS_ENABLED="false")
    try:
        streams = [sse(service.url, tenant.key) for _ in range(4)]
        readers = [await s.__aenter__() for s in streams]
        try:
            ids = []
            for n in range(12):
                if n % 3 == 0:  # through this test's own process
                    response = await client.post(
                        ACTIONS, json={"action_type": f"w{n}"}, headers=tenant.headers
                    )
                else:  # a new connection each time: the kernel spreads them over the workers
                    async with httpx.AsyncClient(base_url=service.url) as http:
                        response = await http.post(
                            ACTIONS, json={"action_type": f"w{n}"}, headers=tenant.headers
                        )
                assert response.status_code == 201
                ids.append(response.json()["id"])
            for reader in readers:
                events = await reader.events(12)
                assert [e.json()["id"] for e in events] == ids
        finally:
            for s in reversed(streams):
                await s.__aexit__(None, None, None)
    finally:
        await service.stop()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_one_thin_notification_per_committed_group(
    client: httpx.AsyncClient, tenant: TenantHandle, database_url: str
) -> None:
    """A batch of 50 rows, and 20 concurrent single writes, each notify per commit, not per
    row; the payload names the tenant only."""
    from app.streamlog.record import CHANNEL

    dsn = make_url(database_url).set(drivername="postgresql")
    listener = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    received: list[str] = []
    try:
        await listener.add_listener(CHANNEL, lambda *args: received.append(args[3]))
        batch = [{"action_type": "bulk"} for _ in range(50)]
        response = await client.post(f"{ACTIONS}/batch", json=batch, headers=tenant.headers)
        assert response.status_code == 201
        for _ in range(50):
            if received:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        ours = [payload for payload in received if tenant.id in payload]
        assert ours == [tenant.id]
        received.clear()
        singles = await asyncio.gather(
            *(
                client.post(ACTIONS, json={"action_type": "one"}, headers=tenant.headers)
                for _ in range(20)
            )
        )
        assert all(r.status_code == 201 for r in singles)
        await asyncio.sleep(0.5)
        ours = [payload for payload in received if tenant.id in payload]
        assert 1 <= len(ours) <= 20  # one per group commit that held some of them
    finally:
        await listener.close()
