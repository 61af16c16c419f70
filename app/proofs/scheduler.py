"""Signing and keeping tree heads on a schedule: every TREE_HEAD_INTERVAL_MINUTES, each tenant
whose audit log grew since its last kept head gets a new one (GET /audits/tree-heads).

Kept heads are what an auditor compares later: a consistency proof between two of them shows
that nothing recorded before the first was changed or removed. Each one is also written to the
tenant's stream in the transaction that keeps it (`ProofService.keep`), so the tenant's
log-stream destinations deliver it: a bucket with object lock then holds heads the service
can no longer change. Every worker runs the loop; a head of a size already kept is not stored
(nor sent) twice (the table's key), so several workers at once only repeat a little work.
Which tenants grew is one query across tenants, as the login role (the maintenance engine);
each head is then signed and stored as its tenant.
"""

import asyncio
import contextlib
import logging
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.audits.models import AuditChainHead
from app.audits.signing import SignerSource
from app.core.background import stopping
from app.core.tenancy import tenant_session
from app.proofs.heads import TreeHead
from app.proofs.models import AuditTreeHead
from app.proofs.service import ProofService

logger = logging.getLogger("actionlog.proofs")


async def grown_tenants(engine: AsyncEngine) -> list[UUID]:
    """Tenants whose audit log is larger than their last kept tree head."""
    kept = (
        select(func.max(AuditTreeHead.tree_size))
        .where(AuditTreeHead.tenant_id == AuditChainHead.tenant_id)
        .scalar_subquery()
    )
    query = select(AuditChainHead.tenant_id).where(AuditChainHead.sequence > func.coalesce(kept, 0))
    async with engine.connect() as connection:
        return list((await connection.scalars(query)).all())


async def keep_head(
    sessionmaker: async_sessionmaker[AsyncSession], signers: SignerSource, tenant_id: UUID
) -> TreeHead | None:
    """Sign and keep one tenant's current tree head (None: that size is kept already)."""
    signer = await signers.get()
    async with tenant_session(sessionmaker, tenant_id) as session, session.begin():
        return await ProofService(session, tenant_id).keep_current_head(signer)


class TreeHeadScheduler:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        maintenance_engine: AsyncEngine,
        signers: SignerSource,
        interval_minutes: float,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.maintenance_engine = maintenance_engine
        self.signers = signers
        self.interval_s = interval_minutes * 60
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="tree-head-scheduler")

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
            except Exception as exc:  # the loop must outlive a bad run; the next one retries
                if stopping():
                    raise asyncio.CancelledError from exc
                logger.exception("tree head run failed")

    async def run_once(self) -> list[TreeHead]:
        """Sign and keep a head for every tenant whose log grew; the heads kept."""
        kept: list[TreeHead] = []
        for tenant_id in await grown_tenants(self.maintenance_engine):
            try:
                head = await keep_head(self.sessionmaker, self.signers, tenant_id)
            except Exception:
                logger.exception("tree head of tenant %s failed", tenant_id)
                continue
            if head is not None:
                kept.append(head)
        return kept
