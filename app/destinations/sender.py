"""The senders: every worker delivers the destinations whose lease it holds, in order.

Each worker scans, every few seconds, for destinations whose lease is free or expired (across
tenants, a plain read) and starts a runner for each; the runner takes the lease with an UPDATE
that only a free lease matches (app/destinations/repository.py), so one sender delivers a
destination at a time, across workers and hosts. The lease lasts DESTINATION_LEASE_SECONDS
and is renewed at half-life; a holder that crashed stops renewing, and another worker takes
over when it expires. The position (`delivered_through`) only moves under the lease.

A runner reads the tenant's stream after its position, in order: up to
DESTINATION_BATCH_RECORDS events and DESTINATION_BATCH_BYTES of records, whatever arrived
since the last read; after a batch that was not full it waits DESTINATION_POLL_SECONDS
before reading again (the short wait that gathers the next batch), after a full one it reads
on at once. Records its filters pass are sent as one batch; the position then moves to
the last event read. A failed batch is kept and sent again, the same batch (an S3 retry
rewrites the same object), after a backoff with jitter that honours `Retry-After`; nothing
moves on until it is delivered. A permanent refusal (4xx other than 408/429) lasting
DESTINATION_FAILING_AFTER_SECONDS turns the destination `failing`; it is still retried, and
the next success makes it `active` again.

Events the stream's pruning removed before delivery (older than
DESTINATION_MAX_BACKLOG_HOURS) are reported as the destination's `last_error` and skipped.
"""

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.background import stopping
from app.core.config import Settings
from app.core.db import utcnow
from app.core.tenancy import tenant_connection, tenant_transaction
from app.destinations import metrics
from app.destinations.repository import (
    candidates,
    claim,
    held_update,
    pruned_through,
    read_held,
    release,
    stream_head,
)
from app.destinations.secrets import KeyRingSource, SecretsUnreadable, full_config
from app.destinations.transports import HOSTNAME, Outcome, Record, Transport, backoff
from app.destinations.types import build_transport
from app.streams.events import StoredEvent, events_after
from app.streams.service import StreamFilter
from app.subjects.sealing import filter_values, open_payloads

logger = logging.getLogger("actionlog.destinations")
BATCH_CAPS = {"datadog": 1000}  # records per request a receiver accepts at most


def delivered_kinds(kinds: Sequence[str] | None) -> frozenset[str]:
    """The stream kinds a destination of these kinds delivers: `audit` brings the signed tree
    heads of the audit log with it (`tree_head`), which `tree_head` alone asks for too."""
    chosen = frozenset(kinds or ())
    return chosen | {"tree_head"} if "audit" in chosen else chosen


def filter_of(row: Any, user_ids: Collection[str] = ()) -> StreamFilter | None:
    """The destination's field filters as the live stream's; None when it has none.

    `user_ids`: every stored spelling of its `user_id` filter (the value, and its keyed digest
    where the tenant seals the field: `user_id_values`); by default the value alone."""
    filters = {name: value for name, value in (row.filters or {}).items() if value}
    if not filters:
        return None
    user_id = filters.get("user_id")
    return StreamFilter(
        kinds=delivered_kinds(row.kinds),
        action_types=frozenset(filters.get("action_type") or ()),
        statuses=frozenset(filters.get("status") or ()),
        providers=frozenset(filters.get("provider_name") or ()),
        service=filters.get("service"),
        user_ids=frozenset(user_ids or ([user_id] if user_id else ())),
        session_id=filters.get("session_id"),
        correlation_id=filters.get("correlation_id"),
    )


async def user_id_values(connection: AsyncConnection, tenant_id: UUID, row: Any) -> list[str]:
    """What the destination's `user_id` filter matches in stored events ([] without one): the
    stream keeps a sealed `user_id` as its keyed digest (app/subjects/sealing.py)."""
    user_id = (row.filters or {}).get("user_id")
    return await filter_values(connection, tenant_id, user_id) if user_id else []


def selected(rows: Sequence[StoredEvent], row: Any, user_ids: Collection[str] = ()) -> list[Record]:
    """The records of these events that the destination's kinds and filters pass.

    Rows are stream events (app/streams/events.py): the filter matches them as they are."""
    wanted = filter_of(row, user_ids)
    if wanted is None:
        kinds = delivered_kinds(row.kinds)
        return [
            Record(event.seq, event.kind, event.payload, event.created_at)
            for event in rows
            if event.kind in kinds
        ]
    return [
        Record(event.seq, event.kind, event.payload, event.created_at)
        for event in rows
        if wanted.matches(event)
    ]


class LeaseLost(Exception):
    """Another sender holds the destination now, or it was paused or deleted."""


class Runner:
    """Delivers one destination while this worker holds its lease."""

    def __init__(self, worker: "DestinationWorker", tenant_id: UUID, destination_id: UUID):
        self.worker = worker
        self.settings = worker.settings
        self.tenant_id = tenant_id
        self.id = destination_id
        self.label = str(destination_id)
        self.lease = timedelta(seconds=self.settings.destination_lease_seconds)
        self.renew_at = datetime.min.replace(tzinfo=utcnow().tzinfo)
        self.transport: Transport | None = None
        self.version: Any = None
        self.full = False

    async def run(self) -> None:
        try:
            await self._deliver()
        except LeaseLost:
            pass
        finally:
            metrics.forget(self.label)
            if self.transport is not None:
                with contextlib.suppress(Exception):
                    await self.transport.close()
            with contextlib.suppress(Exception):
                async with tenant_transaction(self.worker.engine, self.tenant_id) as connection:
                    await release(connection, self.tenant_id, self.id, self.worker.holder)

    async def _hold(self) -> Any:
        """The destination, its lease renewed when at half-life; LeaseLost when gone."""
        now = utcnow()
        if now < self.renew_at:
            async with tenant_connection(self.worker.engine, self.tenant_id) as connection:
                row = await read_held(connection, self.tenant_id, self.id, self.worker.holder)
        else:
            async with tenant_transaction(self.worker.engine, self.tenant_id) as connection:
                row = await claim(
                    connection, self.tenant_id, self.id, self.worker.holder, now, now + self.lease
                )
            self.renew_at = now + self.lease / 2
        if row is None:
            raise LeaseLost
        return row

    async def _update(self, **values: Any) -> Any:
        """Change the destination under the lease; its new row."""
        async with tenant_transaction(self.worker.engine, self.tenant_id) as connection:
            row = await held_update(connection, self.tenant_id, self.id, self.worker.holder, values)
        if row is None:
            raise LeaseLost
        return row

    async def _nap(self, seconds: float) -> None:
        """Wait, keeping the lease."""
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            await asyncio.sleep(min(left, self.lease.total_seconds() / 3))
            if utcnow() >= self.renew_at:
                await self._hold()

    async def _transport(self, row: Any) -> Transport:
        if self.transport is None or row.updated_at != self.version:
            if self.transport is not None:
                await self.transport.close()
            config = full_config(self.worker.ring, row)
            self.transport = build_transport(
                row.type,
                config,
                self.settings.destination_timeout_seconds,
                self.settings.webhook_allow_private,
            )
            self.version = row.updated_at
        return self.transport

    async def _deliver(self) -> None:
        row = await self._hold()
        pending: tuple[list[Record], int] | None = None
        attempt = 0
        while True:
            if pending is None:
                row, pending = await self._next_batch(row)
                if pending is None:
                    await self._nap(self.settings.destination_poll_seconds)
                    continue
            try:
                transport = await self._transport(row)
            except SecretsUnreadable as exc:
                row = await self._failed(Outcome(False, error=str(exc), permanent=True), row)
                await self._nap(self.settings.destination_max_backoff_seconds)
                pending = None
                continue
            records, last = pending
            if records:
                outcome = await transport.send(records)
            else:  # nothing here for this destination's filters
                outcome = Outcome(True)
            if outcome.ok:
                row = await self._delivered(row, last, len(records))
                pending, attempt = None, 0
                if not self.full:
                    await self._nap(self.settings.destination_poll_seconds)
                continue
            attempt += 1
            row = await self._failed(outcome, row)
            await self._nap(
                backoff(attempt, self.settings.destination_max_backoff_seconds, outcome.retry_after)
            )
            row = await self._hold()
            if row.updated_at != self.version:
                pending = None  # the config or filters changed: read the batch again

    async def _next_batch(self, row: Any) -> tuple[Any, tuple[list[Record], int] | None]:
        """The destination as it is now, and the next records to send with the last event
        read (None when nothing is new). One connection reads both, unless the lease is due
        for renewal; LeaseLost when the destination was paused, deleted or taken."""
        if utcnow() >= self.renew_at:
            row = await self._hold()
        limit = self.settings.destination_batch_records
        async with tenant_connection(self.worker.engine, self.tenant_id) as connection:
            if utcnow() < self.renew_at:
                row = await read_held(connection, self.tenant_id, self.id, self.worker.holder)
                if row is None:
                    raise LeaseLost
            if (cap := BATCH_CAPS.get(row.type)) is not None:
                limit = min(limit, cap)
            position = row.delivered_through
            rows = await events_after(connection, self.tenant_id, position, limit)
            if rows:  # sealed audit fields opened (or "[ERASED]"), as the live stream sends them
                sealed = [r.payload for r in rows]
                payloads = await open_payloads(connection, self.tenant_id, sealed)
                rows = [r._replace(payload=p) for r, p in zip(rows, payloads, strict=True)]
            user_ids = await user_id_values(connection, self.tenant_id, row) if rows else []
            head = rows[-1].seq if rows else position
            if len(rows) == limit:  # more may follow: the lag is counted to the stream's head
                head = max(head, await stream_head(connection, self.tenant_id))
            gap = bool(rows) and rows[0].seq > position + 1
            gone = await pruned_through(connection, self.tenant_id) if gap else 0
        if gap and gone >= rows[0].seq - 1:
            await self._update(
                last_error=f"stream events {position + 1}-{rows[0].seq - 1} were pruned before "
                "delivery (older than DESTINATION_MAX_BACKLOG_HOURS)",
                last_error_at=utcnow(),
            )
        self._lag(rows, head - position)
        if not rows:
            return row, None
        budget = self.settings.destination_batch_bytes
        chosen: list[StoredEvent] = []
        size = 0
        for event in rows:
            size += len(event.payload) + 40
            if chosen and size > budget:
                break
            chosen.append(event)
        # a full batch means more is waiting: read on at once; else gather for a poll period
        self.full = len(chosen) < len(rows) or len(rows) == limit
        return row, (selected(chosen, row, user_ids), chosen[-1].seq)

    def _lag(self, rows: Sequence[StoredEvent], behind: int) -> None:
        metrics.LAG_EVENTS.labels(self.label).set(max(behind, 0))
        oldest = (utcnow() - rows[0].created_at).total_seconds() if rows else 0.0
        metrics.LAG_SECONDS.labels(self.label).set(max(oldest, 0.0))

    async def _delivered(self, row: Any, last: int, count: int) -> Any:
        now = utcnow()
        values: dict[str, Any] = {"delivered_through": last, "last_success_at": now}
        if row.failing_since is not None:
            values["failing_since"] = None
        if row.state == "failing":
            values["state"] = "active"
        if count:
            metrics.DELIVERED.labels(row.type).inc(count)
        else:  # passed over by the filters: only the position moves
            values = {"delivered_through": last}
        return await self._update(**values)

    async def _failed(self, outcome: Outcome, row: Any) -> Any:
        now = utcnow()
        metrics.FAILED.labels(row.type).inc()
        values: dict[str, Any] = {"last_error": (outcome.error or "failed")[:1024]}
        values["last_error_at"] = now
        if outcome.permanent:
            since = row.failing_since or now
            values["failing_since"] = since
            after = timedelta(seconds=self.settings.destination_failing_after_seconds)
            if row.state == "active" and now - since >= after:
                values["state"] = "failing"
                logger.warning("destination %s is failing: %s", row.id, outcome.error)
        elif row.failing_since is not None:
            values["failing_since"] = None
        return await self._update(**values)


class DestinationWorker:
    """Finds destinations to deliver and runs one Runner per destination this worker holds."""

    def __init__(
        self,
        engine: AsyncEngine,
        queue_engine: AsyncEngine,
        settings: Settings,
        keys: KeyRingSource,
    ) -> None:
        self.engine = engine
        self.queue_engine = queue_engine
        self.settings = settings
        self.keys = keys
        self.holder = f"{HOSTNAME[:40]}:{os.getpid()}:{secrets.token_hex(6)}"
        self.runners: dict[tuple[UUID, UUID], asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self.ring: Any = None

    def start(self) -> None:
        if self.settings.destinations_enabled and self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self.scan()
            except Exception as exc:
                if stopping():
                    raise asyncio.CancelledError from exc
                failures += 1
                if failures == 1:
                    logger.warning("destination scan failed: %s: %s", type(exc).__name__, exc)
            else:
                failures = 0
            await asyncio.sleep(max(1.0, self.settings.destination_poll_seconds * 2))

    async def scan(self) -> None:
        """Start a runner for each destination whose lease is free (or already this one's)."""
        for key, task in list(self.runners.items()):
            if task.done():
                del self.runners[key]
                if not task.cancelled() and (exc := task.exception()) is not None:
                    logger.warning("destination %s: %s: %s", key[1], type(exc).__name__, exc)
        async with self.queue_engine.connect() as connection:
            found = await candidates(connection, self.holder, utcnow())
        if found and self.ring is None:
            self.ring = await self.keys.get()
        for tenant_id, destination_id in found:
            key = (tenant_id, destination_id)
            if key not in self.runners:
                runner = Runner(self, tenant_id, destination_id)
                self.runners[key] = asyncio.create_task(runner.run())

    async def close(self) -> None:
        tasks = [t for t in [self._task, *self.runners.values()] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self.runners = {}
