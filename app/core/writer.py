"""The one writer of recorded rows: group commit, a transaction per write, or the caller's.

Group commit: the writes of concurrent requests share one transaction and one commit.

On PostgreSQL every commit waits for its WAL flush (fsync), so one request per commit caps
ingest at the disk's flush rate. Requests hand their items to the worker process's writer and
wait; the writer inserts everything that has queued up in one transaction, commits, and only
then answers each request with what was stored for it. While a commit is in flight the next
group gathers, so groups grow with the load.

A failed group is retried one write at a time, so an item that the database refuses fails its
own request only (a rolled-back group gives back whatever it took, such as an audit chain's
sequence numbers, and the retries take them again). A database that is down fails the whole
group at once. Nothing is acknowledged before its commit, so a crash loses only requests that
never got their answer.

Where group commit does not apply (SQLite, which has one writer at a time, or
GROUP_COMMIT=false), `DirectWriter` commits each write in a transaction of its own; and
`SessionWriter` writes in a session's transaction that its owner commits (a write sent with an
idempotency key commits with its key). All three insert through the same `Kind`: what differs
between actions and audit events (how their rows are built and inserted, the metrics they
count) is the domain's, the way they are committed is here.
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar
from uuid import UUID

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core.db import KeptConnection
from app.core.errors import DATABASE_UNAVAILABLE

logger = logging.getLogger("actionlog.writer")

Item = TypeVar("Item")
Stored = TypeVar("Stored")
ItemIn = TypeVar("ItemIn", contravariant=True)
StoredOut = TypeVar("StoredOut", covariant=True)


class Insert(Protocol[ItemIn, StoredOut]):
    async def __call__(
        self,
        connection: AsyncConnection,
        writes: Sequence[tuple[UUID, Sequence[ItemIn]]],
        *,
        announce_now: bool,
    ) -> Sequence[StoredOut]:
        """Insert every write's items in the connection's transaction; what was stored, per
        write. With `announce_now=False` the writer announces the tenants after its commit."""
        ...


@dataclass(frozen=True)
class Kind(Generic[Item, Stored]):
    """What a domain gives the writer: how its items go in, and what it counts."""

    insert: Insert[Item, Stored]
    announce: Callable[[AsyncConnection, Sequence[UUID]], Awaitable[None]]
    recorded: Counter
    group_rows: Histogram
    group_seconds: Histogram


class Writer(Protocol[ItemIn, StoredOut]):
    async def write(self, tenant_id: UUID, items: Sequence[ItemIn]) -> StoredOut:
        """Store the tenant's items; what was stored, once committed (unless stated)."""
        ...

    async def close(self) -> None:
        """Finish the writes in flight and release what the writer holds."""
        ...


@dataclass
class _Pending(Generic[Item, Stored]):
    tenant_id: UUID
    items: Sequence[Item]
    done: asyncio.Future[Stored] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _retrieve(future: asyncio.Future[Stored]) -> None:
    """Mark the outcome of an abandoned write as seen."""
    if not future.cancelled():
        future.exception()


class GroupCommitWriter(Generic[Item, Stored]):
    def __init__(self, engine: AsyncEngine, kind: Kind[Item, Stored], max_rows: int) -> None:
        self.kind = kind
        self.max_rows = max_rows
        # Groups commit one after another, on a connection the writer keeps: a pool checkout
        # and return per group would cost about as much as a small group's insert.
        self._connection = KeptConnection(engine)
        self._queue: deque[_Pending[Item, Stored]] = deque()
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, tenant_id: UUID, items: Sequence[Item]) -> Stored:
        """Return once the tenant's items are committed; raise what the database raised."""
        pending: _Pending[Item, Stored] = _Pending(tenant_id, items)
        self._queue.append(pending)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        try:
            # shielded: a client that goes away does not pull its items out of a group
            return await asyncio.shield(pending.done)
        except asyncio.CancelledError:
            pending.done.add_done_callback(_retrieve)
            raise

    async def close(self) -> None:
        """Wait for the groups in flight (at shutdown) and give the connection back."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._connection.close()

    def _next_group(self) -> list[_Pending[Item, Stored]]:
        group: list[_Pending[Item, Stored]] = []
        size = 0
        while self._queue and (not group or size + len(self._queue[0].items) <= self.max_rows):
            pending = self._queue.popleft()
            group.append(pending)
            size += len(pending.items)
        return group

    async def _flush(self) -> None:
        while self._queue:
            await self._commit(self._next_group())

    async def _commit(self, group: list[_Pending[Item, Stored]]) -> None:
        started = time.perf_counter()
        try:
            connection = await self._connection.get()
            async with connection.begin():
                writes = [(p.tenant_id, p.items) for p in group]
                stored = await self.kind.insert(connection, writes, announce_now=False)
        except Exception as exc:
            # the transaction is rolled back; a connection that failed is not trusted again
            await self._connection.drop()
            if len(group) > 1 and not isinstance(exc, DATABASE_UNAVAILABLE):
                for pending in group:
                    await self._commit([pending])
                return
            for pending in group:
                if not pending.done.done():
                    pending.done.set_exception(exc)
            return
        rows = sum(len(p.items) for p in group)
        self.kind.group_seconds.observe(time.perf_counter() - started)
        self.kind.group_rows.observe(rows)
        self.kind.recorded.inc(rows)
        # committed: the requests are answered now, not after one more round trip
        for pending, answer in zip(group, stored, strict=True):
            if not pending.done.done():
                pending.done.set_result(answer)
        await self._announce(connection, list(dict.fromkeys(p.tenant_id for p in group)))

    async def _announce(self, connection: AsyncConnection, tenants: list[UUID]) -> None:
        """Wake the stream's readers after the commit (app/streamlog/record.py says why not
        inside it); a failure only delays them to their next poll (the rows are committed
        whatever happens here)."""
        try:
            await self.kind.announce(connection, tenants)
        except Exception as exc:
            logger.warning("stream notification failed: %s", type(exc).__name__)
            await self._connection.drop()


class DirectWriter(Generic[Item, Stored]):
    """Each write in its own transaction, committed before `write` returns."""

    def __init__(self, engine: AsyncEngine, kind: Kind[Item, Stored]) -> None:
        self.engine = engine
        self.kind = kind

    async def write(self, tenant_id: UUID, items: Sequence[Item]) -> Stored:
        async with self.engine.begin() as connection:
            (stored,) = await self.kind.insert(connection, [(tenant_id, items)], announce_now=True)
        self.kind.recorded.inc(len(items))
        return stored

    async def close(self) -> None:
        """Nothing is kept between writes."""


class SessionWriter(Generic[Item, Stored]):
    """Writes in the session's transaction: whoever owns the session commits."""

    def __init__(self, session: AsyncSession, kind: Kind[Item, Stored]) -> None:
        self.session = session
        self.kind = kind

    async def write(self, tenant_id: UUID, items: Sequence[Item]) -> Stored:
        connection = await self.session.connection()
        (stored,) = await self.kind.insert(connection, [(tenant_id, items)], announce_now=True)
        self.kind.recorded.inc(len(items))  # committed by the session's owner
        return stored

    async def close(self) -> None:
        """The session is its owner's."""


def make_writer(
    engine: AsyncEngine, kind: Kind[Item, Stored], *, group_commit: bool, max_rows: int
) -> Writer[Item, Stored]:
    """The writer of a worker process: group commit where it applies, else one per write."""
    if group_commit and engine.dialect.name != "sqlite":
        return GroupCommitWriter(engine, kind, max_rows)
    return DirectWriter(engine, kind)
