"""SQL of alerting: one tenant's endpoints, rules, states, events and deliveries; the outbox.

`AlertRepository` is built for one tenant and filters every query by it. The outbox
functions at the end work across tenants for the sender, which claims due deliveries.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import UUID

from sqlalchemy import Select, Table, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.alerts.models import (
    AlertDelivery,
    AlertDeliveryAttempt,
    AlertEvent,
    AlertRule,
    AlertState,
    WebhookEndpoint,
)
from app.audits.models import AuditLog
from app.core.pagination import Cursor, after_cursor

T = TypeVar("T", WebhookEndpoint, AlertRule, AlertEvent, AlertDelivery)


class AlertRepository:
    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _select(self, model: type[T]) -> Select[T]:
        return select(model).where(model.tenant_id == self.tenant_id)

    async def add(self, row: Any) -> Any:
        row.tenant_id = self.tenant_id
        self.session.add(row)
        await self.session.flush()
        return row

    async def delete(self, row: Any) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def flush(self) -> None:
        await self.session.flush()

    async def get(self, model: type[T], row_id: UUID, *, for_update: bool = False) -> T | None:
        query = self._select(model).where(model.id == row_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def all(self, model: type[T]) -> Sequence[T]:
        query = self._select(model).order_by(model.created_at, model.id)
        return (await self.session.scalars(query)).all()

    async def webhook_ids(self, ids: Sequence[UUID]) -> set[UUID]:
        """Which of these ids are this tenant's endpoints."""
        if not ids:
            return set()
        query = select(WebhookEndpoint.id).where(
            WebhookEndpoint.tenant_id == self.tenant_id, WebhookEndpoint.id.in_(ids)
        )
        return set((await self.session.scalars(query)).all())

    async def enabled_webhooks(self, ids: Sequence[UUID]) -> Sequence[WebhookEndpoint]:
        if not ids:
            return []
        query = self._select(WebhookEndpoint).where(
            WebhookEndpoint.id.in_(ids), WebhookEndpoint.enabled.is_(True)
        )
        return (await self.session.scalars(query)).all()

    async def states(self, rule_ids: Sequence[UUID]) -> Sequence[AlertState]:
        if not rule_ids:
            return []
        query = (
            select(AlertState)
            .where(AlertState.tenant_id == self.tenant_id, AlertState.rule_id.in_(rule_ids))
            .order_by(AlertState.rule_id, AlertState.group_key)
        )
        return (await self.session.scalars(query)).all()

    async def page(
        self, model: type[T], conditions: list[Any], cursor: Cursor | None, limit: int
    ) -> Sequence[T]:
        """Newest first, keyset-paged on (created_at, id)."""
        query = self._select(model).where(*conditions)
        if cursor is not None:
            query = query.where(after_cursor(model.created_at, model.id, cursor))
        query = query.order_by(model.created_at.desc(), model.id.desc()).limit(limit)
        return (await self.session.scalars(query)).all()

    async def attempts(self, delivery_ids: Sequence[UUID]) -> dict[UUID, list[Any]]:
        found: dict[UUID, list[Any]] = {d: [] for d in delivery_ids}
        if not delivery_ids:
            return found
        query = (
            select(AlertDeliveryAttempt)
            .where(
                AlertDeliveryAttempt.tenant_id == self.tenant_id,
                AlertDeliveryAttempt.delivery_id.in_(delivery_ids),
            )
            .order_by(AlertDeliveryAttempt.attempted_at, AlertDeliveryAttempt.id)
        )
        for attempt in (await self.session.scalars(query)).all():
            found[attempt.delivery_id].append(attempt)
        return found

    async def audit_changes(self, since: datetime, until: datetime) -> int:
        query = select(func.count()).where(
            AuditLog.tenant_id == self.tenant_id,
            AuditLog.created_at >= since,
            AuditLog.created_at < until,
        )
        return int(await self.session.scalar(query) or 0)


async def tenants_with_rules(session: AsyncSession) -> list[UUID]:
    query = select(AlertRule.tenant_id).where(AlertRule.enabled.is_(True)).distinct()
    return list((await session.scalars(query)).all())


# The outbox, across tenants

D = cast(Table, AlertDelivery.__table__)


async def claim_due(
    connection: AsyncConnection, now: datetime, until: datetime, limit: int
) -> Sequence[Any]:
    """Take up to `limit` due deliveries for this sender until `until`.

    The due ones are found across tenants without a lock, then claimed tenant by tenant with
    an UPDATE that holds the tenant and checks again that they are due: of two senders that
    found the same delivery, the second's UPDATE waits for the first's, then finds it no
    longer due and skips it. No cross-tenant FOR UPDATE (a distributed PostgreSQL refuses
    one); each claim routes to its tenant's shard. The same on every engine.
    """
    due = (
        select(D.c.tenant_id, D.c.id)
        .where(D.c.status == "pending", D.c.next_attempt_at <= now)
        .order_by(D.c.next_attempt_at)
        .limit(limit)
    )
    by_tenant: dict[UUID, list[UUID]] = {}
    for tenant_id, delivery_id in (await connection.execute(due)).all():
        by_tenant.setdefault(tenant_id, []).append(delivery_id)
    claimed: list[Any] = []
    for tenant_id in sorted(by_tenant, key=lambda t: t.bytes):
        rows = await connection.execute(
            update(D)
            .where(
                D.c.tenant_id == tenant_id,
                D.c.id.in_(by_tenant[tenant_id]),
                D.c.status == "pending",
                D.c.next_attempt_at <= now,
            )
            .values(next_attempt_at=until)
            .returning(*D.c)
        )
        claimed += rows.all()
    return claimed


async def endpoint_of(connection: AsyncConnection, tenant_id: UUID, endpoint_id: UUID) -> Any:
    E = cast(Table, WebhookEndpoint.__table__)
    query = select(E).where(and_(E.c.tenant_id == tenant_id, E.c.id == endpoint_id))
    return (await connection.execute(query)).one_or_none()
