"""Pruning of stream events older than STREAM_RETENTION_HOURS, in every worker.

The stream is for catching up after a disconnect, not a second copy of the logs: events are
kept for the retention period (default 24 hours) and then deleted, 5000 at a time. A client
resuming from an event that is gone gets 410 and re-reads older records with the list routes.
Events a destination has yet to deliver are kept past the retention (`holds`: per tenant, the
lowest position of its destinations, given by app/destinations), up to a maximum backlog age
(DESTINATION_MAX_BACKLOG_HOURS), after which they go anyway: a receiver that stays down longer
than that loses them, and its destination says so.
Deleting old rows is idempotent, so workers need not agree on who prunes. The delete is by
age across every tenant, so it runs on the login role's maintenance pool, which row-level
security does not hold (see app/core/tenancy.py).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.config import Settings
from app.core.db import utcnow
from app.streams.repository import prune

logger = logging.getLogger("actionlog.streams")
PRUNE_EVERY = 600.0
Holds = Callable[[AsyncConnection], Awaitable[dict[UUID, int]]]


async def prune_once(
    engine: AsyncEngine,
    retention_hours: int,
    holds: Holds | None = None,
    max_backlog_hours: int | None = None,
) -> int:
    """Delete the events older than the retention, but those still held (up to the maximum
    backlog age); how many were deleted."""
    cutoff = utcnow() - timedelta(hours=retention_hours)
    hard = None if max_backlog_hours is None else utcnow() - timedelta(hours=max_backlog_hours)
    total = 0
    while True:
        async with engine.begin() as connection:
            held = await holds(connection) if holds is not None else None
            deleted = await prune(connection, cutoff, holds=held, hard_before=hard)
        total += deleted
        if deleted < 5000:
            return total


class StreamPruner:
    def __init__(self, engine: AsyncEngine, settings: Settings, holds: Holds | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.holds = holds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY)
            try:
                await prune_once(
                    self.engine,
                    self.settings.stream_retention_hours,
                    self.holds,
                    self.settings.destination_max_backlog_hours,
                )
            except Exception as exc:
                logger.warning("stream pruning failed: %s: %s", type(exc).__name__, exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
