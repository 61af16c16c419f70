"""The worker's fan-out: one read of new events per tenant and wake-up, shared by its streams.

Each worker keeps, per tenant with open streams here, how far it has read the tenant's
events. When it learns that a tenant has new events it reads them once, in order, and offers
each one to every local subscription of that tenant. It learns it from:

- PostgreSQL notifications, on a dedicated listening connection (app/streams/listener.py),
  sent by whichever worker or host committed the events; after that connection is
  re-established, every tenant is read again (the catch-up read);
- on SQLite, the commits of this process (a connection marked by app/streamlog/record.py);
- on both, a poll of the tenants' counters every STREAM_POLL_SECONDS, which catches writers
  that cannot notify this process (the CLI on SQLite) and anything missed.

Subscriptions hold a bounded queue. One that is full is dropped from the feed and marked
overflowed: its stream is closed instead of buffering without bound, and the client resumes
from the database with its last event id. Subscriptions never trust the hub for order: each
checks that numbers follow each other and reads any hole from the database
(app/streams/service.py), so a missed wake-up can delay an event, never lose it.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import metrics
from app.core.config import Settings
from app.core.db import utcnow
from app.core.tenancy import set_tenant, tenant_connection, tenant_transaction
from app.streamlog.record import SQLITE_POKES
from app.streams.events import StoredEvent
from app.streams.listener import PgListener
from app.streams.repository import Head, StreamRepository, heads_of, renew_leases
from app.subjects.sealing import filter_values, open_payloads

logger = logging.getLogger("actionlog.streams")
T = TypeVar("T")
READ_CHUNK = 1000
LEASE_SECONDS = 60.0
LEASE = timedelta(seconds=LEASE_SECONDS)


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    kind: str
    payload: str
    action_type: str | None
    status: str | None
    provider_name: str | None
    service: str | None
    user_id: str | None
    session_id: str | None
    correlation_id: str | None
    # The event as sent, built once per worker and shared by all its streams: an SSE frame
    # and a WebSocket message (payloads are one-line JSON).
    sse: bytes
    ws: str


def event_of(row: StoredEvent) -> Event:
    seq, kind, payload = row.seq, row.kind, row.payload
    sse = f"id: {seq}\nevent: {kind}\ndata: {payload}\n\n".encode()
    ws = f'{{"type": "event", "id": "{seq}", "event": "{kind}", "data": {payload}}}'
    return Event(seq, kind, payload, *row[4:], sse, ws)


def _settled(task: asyncio.Task[Any]) -> None:
    """Mark the outcome of a step whose waiter went away as seen."""
    if not task.cancelled():
        task.exception()


class Subscription:
    def __init__(self, tenant_id: UUID, maxsize: int) -> None:
        self.tenant_id = tenant_id
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, item: Event) -> bool:
        """Queue an event; False (and overflowed) when the queue is full."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            metrics.STREAM_OVERFLOWS.inc()
            return False
        metrics.STREAM_QUEUED.set(self.queue.qsize())  # how far this client is behind
        return True

    def discard(self) -> None:
        """Empty the queue (while catching up from the database, which holds it all anyway)."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.overflowed = False


@dataclass
class _Feed:
    last_seq: int
    subscriptions: set[Subscription] = field(default_factory=set)
    again: bool = False
    draining: asyncio.Task[None] | None = None


class StreamHub:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        # Reads are short transactions, rolled back: the tenant is set per transaction
        # (app/core/tenancy.py). Leases are counted and taken in transactions that commit
        # (the key's advisory lock must last until the commit), as the poll's renewals are.
        self.engine = engine
        self._transactions = engine
        self.settings = settings
        self._feeds: dict[UUID, _Feed] = {}
        self._leases: dict[UUID, UUID] = {}  # lease id -> tenant id
        self._tasks: set[asyncio.Task[Any]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._listener: PgListener | None = None
        self._closed = False
        if engine.dialect.name == "postgresql":
            self._listener = PgListener(engine.url, self.poke)
        else:
            event.listen(engine.sync_engine, "commit", self._sqlite_commit)
            event.listen(engine.sync_engine, "rollback", self._sqlite_rollback)

    # Wake-ups

    def _sqlite_commit(self, connection: Any) -> None:
        tenants = connection.info.pop(SQLITE_POKES, None)
        if tenants and not self._closed:
            # The read this schedules needs the pool's only SQLite connection, which this
            # commit holds until it is done: the read sees the committed events.
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_soon(self.poke, list(tenants))

    @staticmethod
    def _sqlite_rollback(connection: Any) -> None:
        connection.info.pop(SQLITE_POKES, None)

    def poke(self, tenant_ids: Iterable[UUID] | None = None) -> None:
        """New events may exist for these tenants (None: for any): read them."""
        targets = self._feeds.keys() if tenant_ids is None else tenant_ids
        for tenant_id in list(targets):
            feed = self._feeds.get(tenant_id)
            if feed is None:
                continue
            feed.again = True
            if feed.draining is None or feed.draining.done():
                feed.draining = asyncio.create_task(self._drain(tenant_id, feed))

    async def _drain(self, tenant_id: UUID, feed: _Feed) -> None:
        while feed.again:
            feed.again = False
            while True:
                try:
                    events = await self.read(tenant_id, feed.last_seq, READ_CHUNK)
                except Exception as exc:  # the poll tries again
                    logger.warning("stream read failed: %s: %s", type(exc).__name__, exc)
                    return
                for item in events:
                    for subscription in list(feed.subscriptions):
                        if not subscription.offer(item):
                            feed.subscriptions.discard(subscription)
                if events:
                    feed.last_seq = events[-1].seq
                if len(events) < READ_CHUNK:
                    break

    # Subscriptions

    async def subscribe(self, tenant_id: UUID) -> Subscription:
        self._start()
        if tenant_id not in self._feeds:
            head = await self.head(tenant_id)
            self._feeds.setdefault(tenant_id, _Feed(last_seq=head.seq))
        subscription = Subscription(tenant_id, self.settings.stream_queue_events)
        self._feeds[tenant_id].subscriptions.add(subscription)
        return subscription

    def rejoin(self, subscription: Subscription) -> None:
        feed = self._feeds.get(subscription.tenant_id)
        if feed is not None:
            feed.subscriptions.add(subscription)

    def unsubscribe(self, subscription: Subscription) -> None:
        feed = self._feeds.get(subscription.tenant_id)
        if feed is None:
            return
        feed.subscriptions.discard(subscription)
        if not feed.subscriptions:
            del self._feeds[subscription.tenant_id]

    # Reads

    async def head(self, tenant_id: UUID) -> Head:
        return await self._shielded(self._head(tenant_id))

    async def _head(self, tenant_id: UUID) -> Head:
        async with tenant_connection(self.engine, tenant_id) as connection:
            return await StreamRepository(connection, tenant_id).head()

    async def user_id_values(self, tenant_id: UUID, value: str | None) -> list[str]:
        """What a `user_id` filter matches in stored events: the value, and its keyed digest
        where the tenant seals that field (the stream stores the digest); [] for no filter."""
        if value is None:
            return []
        return await self._shielded(self._user_id_values(tenant_id, value))

    async def _user_id_values(self, tenant_id: UUID, value: str) -> list[str]:
        async with tenant_connection(self.engine, tenant_id) as connection:
            return await filter_values(connection, tenant_id, value)

    async def read(
        self, tenant_id: UUID, after: int, limit: int, upto: int | None = None
    ) -> list[Event]:
        return await self._shielded(self._read(tenant_id, after, limit, upto))

    async def _read(self, tenant_id: UUID, after: int, limit: int, upto: int | None) -> list[Event]:
        async with tenant_connection(self.engine, tenant_id) as connection:
            rows = await StreamRepository(connection, tenant_id).after(after, limit, upto)
            payloads = await open_payloads(connection, tenant_id, [row.payload for row in rows])
        return [
            event_of(row._replace(payload=payload))
            for row, payload in zip(rows, payloads, strict=True)
        ]

    async def _shielded(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a database step to its end even if the stream is cancelled meanwhile.

        A stream is cancelled when its client goes away, and the SSE response's task group
        cancels at every later await too: a query cut off there could not give its
        connection back to the pool (SQLite's holds only one). The step runs in a task of its
        own instead, which finishes and returns the connection; only the wait is cancelled.
        """
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(_settled)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    # Leases of this worker's open streams

    async def lease(self, tenant_id: UUID, key_id: UUID, lease_id: UUID) -> int | None:
        """Take a stream lease for the key; None, or the number of live leases when full."""
        return await self._shielded(self._lease(tenant_id, key_id, lease_id))

    async def _lease(self, tenant_id: UUID, key_id: UUID, lease_id: UUID) -> int | None:
        now = utcnow()
        async with tenant_transaction(self._transactions, tenant_id) as connection:
            repository = StreamRepository(connection, tenant_id)
            full = await repository.lease(
                lease_id, key_id, self.settings.stream_max_per_key, now + LEASE, now
            )
        if full is None:
            self._leases[lease_id] = tenant_id
        return full

    def release(self, tenant_id: UUID, lease_id: UUID) -> None:
        """Give a lease back, in the background (a stream may end by being cancelled)."""
        self._leases.pop(lease_id, None)
        self._spawn(self._release(tenant_id, lease_id))

    async def _release(self, tenant_id: UUID, lease_id: UUID) -> None:
        try:
            async with tenant_transaction(self._transactions, tenant_id) as connection:
                await StreamRepository(connection, tenant_id).release(lease_id)
        except Exception as exc:  # it expires on its own
            logger.warning("stream lease not released: %s: %s", type(exc).__name__, exc)

    # Background work: the poll, lease renewal and the PostgreSQL listener

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
            if self._listener is not None:
                self._listener.start()

    async def _poll(self) -> None:
        renewed = time.monotonic()
        while not self._closed:
            await asyncio.sleep(self.settings.stream_poll_seconds)
            try:
                renew = time.monotonic() - renewed > LEASE_SECONDS / 3
                heads = await self._poll_once(renew)
                if renew:
                    renewed = time.monotonic()
            except Exception as exc:
                logger.warning("stream poll failed: %s: %s", type(exc).__name__, exc)
                continue
            behind = [t for t, feed in self._feeds.items() if heads.get(t, 0) > feed.last_seq]
            if behind:
                self.poke(behind)

    async def _poll_once(self, renew: bool) -> dict[UUID, int]:
        """The heads of this worker's tenants (and their leases extended if `renew`), each
        tenant's under its own row-level security setting, in one transaction."""
        leases: dict[UUID, list[tuple[UUID, UUID]]] = {}
        if renew:
            for lease, tenant_id in self._leases.items():
                leases.setdefault(tenant_id, []).append((tenant_id, lease))
        heads: dict[UUID, int] = {}
        if not self._feeds and not leases:
            return heads
        expires = utcnow() + LEASE
        async with self._transactions.begin() as connection:
            for tenant_id in set(self._feeds) | set(leases):
                await set_tenant(connection, tenant_id)
                if tenant_id in self._feeds:
                    heads.update(await heads_of(connection, [tenant_id]))
                if tenant_id in leases:
                    await renew_leases(connection, leases[tenant_id], expires)
        return heads

    async def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            await self._listener.close()
        tasks = [self._poller, *(f.draining for f in self._feeds.values())]
        for task in tasks:
            if task is not None and not task.done():
                task.cancel()
        await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
