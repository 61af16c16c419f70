"""Writers of action rows: group commit, and a plain transaction per write.

Group commit: the actions of concurrent requests share one transaction and one commit.

On PostgreSQL every commit waits for its WAL flush (fsync), so one request per commit caps
ingest at the disk's flush rate. Requests hand their rows to the worker process's writer and
wait; the writer inserts everything that has queued up (with its rollups) in one transaction,
commits, and only then releases the requests, which answer 201. While a commit is in flight
the next group gathers, so groups grow with the load.

A failed group is retried one request at a time, so a row that the database refuses fails
its own request only. Nothing is acknowledged before its commit, so a crash loses only
requests that never got their 201.

Where group commit does not apply (SQLite, which has one writer at a time, or
GROUP_COMMIT=false), `DirectWriter` commits each write in a transaction of its own. Both take
the tenant with the rows: the insert stamps it on every row, and sets it as the transaction's
tenant for row-level security before each tenant's rows (one transaction may hold several).
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.actions.repository import Claim, find_claims, find_record, insert_actions
from app.core import metrics
from app.core.db import KeptConnection
from app.core.errors import DATABASE_UNAVAILABLE
from app.core.tenancy import tenant_connection
from app.streamlog import record as streamlog

logger = logging.getLogger("actionlog.writer")


@dataclass
class _Pending:
    tenant_id: UUID
    rows: list[dict[str, Any]]
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark the outcome of an abandoned write as seen."""
    if not future.cancelled():
        future.exception()


class EngineReads:
    """The reads a writer answers for client-generated ids, each on a short connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def claims(self, tenant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, Claim]:
        async with tenant_connection(self.engine, tenant_id) as connection:
            return await find_claims(connection, tenant_id, ids)

    async def record(self, tenant_id: UUID, action_id: UUID) -> dict[str, Any] | None:
        async with tenant_connection(self.engine, tenant_id) as connection:
            return await find_record(connection, tenant_id, action_id)


class GroupCommitWriter(EngineReads):
    def __init__(self, engine: AsyncEngine, max_rows: int) -> None:
        super().__init__(engine)
        self.max_rows = max_rows
        # Groups commit one after another, on a connection the writer keeps: a pool checkout
        # and return per group would cost about as much as a small group's insert.
        self._connection = KeptConnection(engine)
        self._queue: deque[_Pending] = deque()
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, tenant_id: UUID, rows: list[dict[str, Any]]) -> None:
        """Return once the tenant's `rows` are committed; raise what the database raised."""
        pending = _Pending(tenant_id, rows)
        self._queue.append(pending)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        try:
            # shielded: a client that goes away does not pull its rows out of a group
            await asyncio.shield(pending.done)
        except asyncio.CancelledError:
            pending.done.add_done_callback(_retrieve)
            raise

    async def close(self) -> None:
        """Wait for the groups in flight (at shutdown) and give the connection back."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._connection.close()

    def _next_group(self) -> list[_Pending]:
        group: list[_Pending] = []
        size = 0
        while self._queue and (not group or size + len(self._queue[0].rows) <= self.max_rows):
            pending = self._queue.popleft()
            group.append(pending)
            size += len(pending.rows)
        return group

    async def _flush(self) -> None:
        while self._queue:
            await self._commit(self._next_group())

    async def _commit(self, group: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            connection = await self._connection.get()
            async with connection.begin():
                writes = [(p.tenant_id, p.rows) for p in group]
                tenants = await insert_actions(connection, writes, announce_now=False)
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
        await self._announce(connection, tenants)
        rows = sum(len(p.rows) for p in group)
        metrics.GROUP_SECONDS.observe(time.perf_counter() - started)
        metrics.GROUP_ROWS.observe(rows)
        metrics.ACTIONS_RECORDED.inc(rows)
        for pending in group:
            if not pending.done.done():
                pending.done.set_result(None)

    async def _announce(self, connection: AsyncConnection, tenants: list[UUID]) -> None:
        """Wake the stream's readers after the commit; a failure only delays them to their
        next poll (the rows are committed whatever happens here)."""
        try:
            await streamlog.announce(connection, tenants)
        except Exception as exc:
            logger.warning("stream notification failed: %s", type(exc).__name__)
            await self._connection.drop()


class DirectWriter(EngineReads):
    """Each write in its own transaction, committed before `write` returns."""

    async def write(self, tenant_id: UUID, rows: list[dict[str, Any]]) -> None:
        async with self.engine.begin() as connection:
            await insert_actions(connection, [(tenant_id, rows)])
        metrics.ACTIONS_RECORDED.inc(len(rows))

    async def close(self) -> None:
        """Nothing is kept between writes."""
