"""Retention: actions older than a tenant's `retention_days` are purged, rollups included.

Audit rows are not purged: they form the tenant's hash chain, and an audit trail that loses
its oldest links could no longer be verified. Each purge is itself written to the audit trail.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.actions.repository import ActionRepository
from app.audits.service import AuditService
from app.core.auth import Actor
from app.core.db import utcnow
from app.core.redact import PayloadRules

CHUNK = 5000


@dataclass(frozen=True)
class Purged:
    tenant_id: UUID
    before: datetime
    deleted: int


async def purge_tenant(
    sessionmaker: async_sessionmaker[AsyncSession],
    rules: PayloadRules,
    tenant_id: UUID,
    before: datetime,
    actor: Actor,
) -> Purged:
    """Delete the tenant's actions created before `before`, a chunk per transaction.

    Chunks keep each transaction (and the locks it holds on rollup rows) short, so writers
    are not held up by a large purge.
    """
    deleted = 0
    while True:
        async with sessionmaker() as session, session.begin():
            count = await ActionRepository(session, tenant_id).purge_before(before, CHUNK)
            deleted += count
        if count < CHUNK:
            break
    if deleted:
        async with sessionmaker() as session, session.begin():
            await AuditService(session, rules).log(
                tenant_id,
                "purge",
                "action_logs",
                str(tenant_id),
                actor=Actor(actor.id),
                metadata={"before": before.isoformat(), "deleted": deleted},
            )
    return Purged(tenant_id, before, deleted)


def retention_cutoff(retention_days: int, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=retention_days)
