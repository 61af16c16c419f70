"""Writers of audit events: group commit, and a plain transaction per write.

Group commit: the audit events of concurrent requests share one transaction and one commit.

Every audit write locks its tenant's chain head, so one transaction per request serialises a
tenant's audit writes at one commit (one WAL flush) each. Requests hand their events to the
worker process's writer and wait; the writer extends the chains with everything that has
queued up, in queue order (`extend_chains`: each tenant's head locked once, each event its own
sequence, prev_hash and hash), commits, and only then answers the requests with their stored
rows. While a commit is in flight the next group gathers, so groups grow with the load. Several
workers (or hosts) each run a writer; their groups queue on the head's row lock, and each reads
the head the previous one committed, so the chain never forks.

A failed group is retried one request at a time, so an event that the database refuses fails
its own request only. The chain heads move inside the transaction: a group that rolled back
gives its sequence numbers back, and the retries take them again, without a gap. Nothing is
acknowledged before its commit, so a crash loses only requests that never got their 201.

Where group commit does not apply (SQLite, which has one writer at a time, or
GROUP_COMMIT=false), `DirectAuditWriter` commits each write in a transaction of its own.
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.audits.events import Event
from app.audits.repository import AuditRow, extend_chains
from app.core import metrics
from app.core.db import KeptConnection
from app.core.errors import DATABASE_UNAVAILABLE
from app.streamlog import record as streamlog

logger = logging.getLogger("actionlog.writer")


class AuditWriter(Protocol):
    async def write(self, tenant_id: UUID, events: Sequence[Event]) -> list[AuditRow]:
        """Append the events to the tenant's chain; their stored rows, once committed."""
        ...

    async def close(self) -> None:
        """Finish the writes in flight and release what the writer holds."""
        ...


@dataclass
class _Pending:
    tenant_id: UUID
    events: Sequence[Event]
    done: asyncio.Future[list[AuditRow]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _retrieve(future: asyncio.Future[list[AuditRow]]) -> None:
    """Mark the outcome of an abandoned write as seen."""
    if not future.cancelled():
        future.exception()


class GroupCommitAuditWriter:
    def __init__(self, engine: AsyncEngine, max_rows: int) -> None:
        self.max_rows = max_rows
        # Groups commit one after another, on a connection the writer keeps.
        self._connection = KeptConnection(engine)
        self._queue: deque[_Pending] = deque()
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, tenant_id: UUID, events: Sequence[Event]) -> list[AuditRow]:
        pending = _Pending(tenant_id, events)
        self._queue.append(pending)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        try:
            # shielded: a client that goes away does not pull its events out of a group
            return await asyncio.shield(pending.done)
        except asyncio.CancelledError:
            pending.done.add_done_callback(_retrieve)
            raise

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._connection.close()

    def _next_group(self) -> list[_Pending]:
        group: list[_Pending] = []
        size = 0
        while self._queue and (not group or size + len(self._queue[0].events) <= self.max_rows):
            pending = self._queue.popleft()
            group.append(pending)
            size += len(pending.events)
        return group

    async def _flush(self) -> None:
        while self._queue:
            await self._commit(self._next_group())

    async def _commit(self, group: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            connection = await self._connection.get()
            async with connection.begin():
                writes = [(p.tenant_id, p.events) for p in group]
                stored = await extend_chains(connection, writes, announce_now=False)
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
        await self._announce(connection, list(dict.fromkeys(p.tenant_id for p in group)))
        rows = sum(len(p.events) for p in group)
        metrics.AUDIT_GROUP_SECONDS.observe(time.perf_counter() - started)
        metrics.AUDIT_GROUP_ROWS.observe(rows)
        metrics.AUDITS_RECORDED.inc(rows)
        for pending, answer in zip(group, stored, strict=True):
            if not pending.done.done():
                pending.done.set_result(answer)

    async def _announce(self, connection: AsyncConnection, tenants: list[UUID]) -> None:
        """Wake the stream's readers after the commit (app/streamlog/record.py says why not
        inside it); a failure only delays them to their next poll."""
        try:
            await streamlog.announce(connection, tenants)
        except Exception as exc:
            logger.warning("stream notification failed: %s", type(exc).__name__)
            await self._connection.drop()


class DirectAuditWriter:
    """Each write in its own transaction, committed before `write` returns."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def write(self, tenant_id: UUID, events: Sequence[Event]) -> list[AuditRow]:
        async with self.engine.begin() as connection:
            (rows,) = await extend_chains(connection, [(tenant_id, events)])
        metrics.AUDITS_RECORDED.inc(len(rows))
        return rows

    async def close(self) -> None:
        """Nothing is kept between writes."""
