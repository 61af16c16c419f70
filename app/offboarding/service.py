"""Offboarding a tenant: the operator's `DELETE /api/v1/admin/tenants/{id}` and
`actionlog tenant delete`.

Order matters. First every key of the tenant is revoked, in a transaction of its own, so that
no request is served for the tenant from that moment (key lookups read the stored key on every
request). Then its actions and audit rows are deleted in batches of `BATCH` rows, one
transaction each, and last the small tables and the tenant row itself.

Each step is recorded in the operator's log (logger `actionlog.operator`): the tenant's own
audit trail is part of what is deleted. Offboarding is idempotent: run again after an
interruption, it carries on where it stopped (the keys are already revoked, some rows already
gone); for a tenant that is already gone it answers NotFound, and deletes nothing.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import NotFound
from app.core.tenancy import tenant_session
from app.offboarding.repository import BATCHED, OffboardingRepository, find_tenant

BATCH = 5000
operator_log = logging.getLogger("actionlog.operator")


@dataclass(frozen=True)
class Offboarded:
    tenant_id: UUID
    keys_revoked: int
    actions_deleted: int
    audits_deleted: int


async def offboard_tenant(
    sessionmaker: async_sessionmaker[AsyncSession],
    ref: str,
    actor: str,
    clock: Callable[[], datetime],
) -> Offboarded:
    """Revoke the keys of the tenant `ref` (id or slug), then delete all its data in batches."""
    batch = BATCH
    async with sessionmaker() as session, session.begin():
        tenant_id = await find_tenant(session, ref)
        if tenant_id is None:
            raise NotFound(f"tenant {ref} not found (already offboarded?)")
        revoked = await OffboardingRepository(session, tenant_id).revoke_keys(clock())
    operator_log.warning("offboarding tenant %s by %s: %d keys revoked", tenant_id, actor, revoked)
    deleted = {kind: 0 for kind in BATCHED}
    for kind in BATCHED:
        while True:
            async with tenant_session(sessionmaker, tenant_id) as session, session.begin():
                count = await OffboardingRepository(session, tenant_id).delete_batch(kind, batch)
            deleted[kind] += count
            if count < batch:
                break
    async with tenant_session(sessionmaker, tenant_id) as session, session.begin():
        await OffboardingRepository(session, tenant_id).delete_the_rest()
    done = Offboarded(tenant_id, revoked, deleted["actions"], deleted["audits"])
    operator_log.warning(
        "offboarded tenant %s by %s: %d actions and %d audit rows deleted, tenant removed",
        tenant_id,
        actor,
        done.actions_deleted,
        done.audits_deleted,
    )
    return done
