"""The retention scheduler: every RETENTION_INTERVAL_MINUTES, prune every tenant by its policy.

Each worker process runs the loop, but a run happens only in the process that takes the
scheduler's turn (`RetentionLocks.scheduler_turn`: a PostgreSQL advisory lock), so several
workers and hosts prune one at a time and the others skip that round. The first run comes one
interval after start. A failing tenant is logged and skipped; the next run tries again.
"""

import asyncio
import contextlib
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import metrics
from app.core.auth import Actor
from app.retention.locks import Busy, RetentionLocks
from app.retention.repository import tenants_with_policy
from app.retention.service import Pruned, Pruner

logger = logging.getLogger("actionlog.retention")
SCHEDULER_ACTOR = Actor("retention")


class RetentionScheduler:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        pruner: Pruner,
        locks: RetentionLocks,
        interval_minutes: float,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.pruner = pruner
        self.locks = locks
        self.interval_s = interval_minutes * 60
        self.runs = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="retention-scheduler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.run_once()
            except Exception:  # the loop must outlive a bad run; the next one retries
                metrics.RETENTION_FAILURES.inc()
                logger.exception("retention run failed")

    async def run_once(self, now: datetime | None = None) -> list[Pruned] | None:
        """One run over every tenant with a policy; None when another process had the turn."""
        try:
            async with self.locks.scheduler_turn():
                done = await self._prune_all(now)
        except Busy:
            return None
        self.runs += 1
        return done

    async def _prune_all(self, now: datetime | None) -> list[Pruned]:
        async with self.sessionmaker() as session:
            tenants = [
                (t.id, t.retention_days, t.audit_retention_days)
                for t in await tenants_with_policy(session)
            ]
        done: list[Pruned] = []
        for tenant_id, days, audit_days in tenants:
            try:
                done += await self.pruner.prune_by_policy(
                    tenant_id, days, audit_days, SCHEDULER_ACTOR, now=now
                )
            except Exception:
                metrics.RETENTION_FAILURES.inc()
                logger.exception("retention of tenant %s failed", tenant_id)
        for pruned in done:
            if pruned.deleted:
                logger.info(
                    "pruned %d %s of tenant %s before %s (%d archive files)",
                    pruned.deleted,
                    pruned.kind,
                    pruned.tenant_id,
                    pruned.before.isoformat(),
                    pruned.files,
                )
        return done
