"""Pruning of stream events older than STREAM_RETENTION_HOURS, in every worker.

The stream is for catching up after a disconnect, not a second copy of the logs: events are
kept for the retention period (default 24 hours) and then deleted, 5000 at a time. A client
resuming from an event that is gone gets 410 and re-reads older records with the list routes.
Deleting old rows is idempotent, so workers need not agree on who prunes. The delete is by
age across every tenant, so it runs on the login role's maintenance pool, which row-level
security does not hold (see app/core/tenancy.py).
"""

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.db import utcnow
from app.streams.repository import prune

logger = logging.getLogger("actionlog.streams")
PRUNE_EVERY = 600.0


async def prune_once(engine: AsyncEngine, retention_hours: int) -> int:
    """Delete the events older than the retention; how many were deleted."""
    cutoff = utcnow() - timedelta(hours=retention_hours)
    total = 0
    while True:
        async with engine.begin() as connection:
            deleted = await prune(connection, cutoff)
        total += deleted
        if deleted < 5000:
            return total


class StreamPruner:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY)
            try:
                await prune_once(self.engine, self.settings.stream_retention_hours)
            except Exception as exc:
                logger.warning("stream pruning failed: %s: %s", type(exc).__name__, exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
