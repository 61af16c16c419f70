"""Evaluation of alert rules: every ALERT_EVAL_SECONDS, by one worker at a time.

On PostgreSQL a worker evaluates only while it holds a session advisory lock, which the
others try and skip; it is released with the connection if the worker dies. On SQLite a
tenant's evaluation is one transaction and SQLite serialises writers: a second process that
evaluated the same tenant at the same time fails to commit and tries again next round.

Each group of a rule moves ok → firing when its condition holds (unless it fired less than
`cooldown_minutes` ago) and firing → resolved when it no longer holds; a resolved group can
fire again. A change writes the state, an `alert_events` row and one outbox row per enabled
endpoint of the rule in one transaction, so each notification is stored exactly once, with
its state change. While the database is unreachable nothing can change state and nothing is
sent: evaluation backs off (doubling up to 5 minutes) and logs the outage once.
"""

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.alerts.metrics import UNGROUPED, Measurement, breached, measure, window
from app.alerts.models import AlertEvent, AlertRule, AlertState
from app.alerts.repository import AlertRepository, tenants_with_rules
from app.alerts.service import outbox_row
from app.core.config import Settings
from app.core.db import new_id, utcnow
from app.core.tenancy import tenant_session

logger = logging.getLogger("actionlog.alerts")
LOCK_KEY = 0x616C657274  # "alert"
MAX_BACKOFF = 300.0


class AlertEvaluator:
    def __init__(
        self,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        on_notifications: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
        queue_engine: AsyncEngine | None = None,
    ) -> None:
        self.engine = engine
        # Which tenants have rules is asked across tenants, as the login role (row-level
        # security does not hold it); each tenant's rules are then evaluated under its setting.
        self.queue_engine = queue_engine or engine
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.on_notifications = on_notifications
        self.clock = clock
        self._local = asyncio.Lock()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self.run_once()
            except Exception as exc:
                failures += 1
                if failures == 1:
                    logger.warning("alert evaluation failed: %s: %s", type(exc).__name__, exc)
            else:
                if failures:
                    logger.warning("alert evaluation works again after %d failures", failures)
                failures = 0
            delay = self.settings.alert_eval_seconds * 2 ** min(failures, 12)
            await asyncio.sleep(min(delay, max(MAX_BACKOFF, self.settings.alert_eval_seconds)))

    async def run_once(self, only: list[UUID] | None = None) -> int | None:
        """Evaluate every enabled rule (of the `only` tenants, if given); the number of state
        changes, None if another worker holds the evaluation."""
        async with self._local:
            if self.engine.dialect.name != "postgresql":
                return await self._evaluate_all(only)
            async with self.engine.connect() as lock:
                if not await lock.scalar(select(func.pg_try_advisory_lock(LOCK_KEY))):
                    return None
                try:
                    return await self._evaluate_all(only)
                finally:
                    await lock.scalar(select(func.pg_advisory_unlock(LOCK_KEY)))
                    await lock.commit()

    async def _evaluate_all(self, only: list[UUID] | None) -> int:
        async with AsyncSession(self.queue_engine) as session:
            tenants = await tenants_with_rules(session)
        if only is not None:
            tenants = [tenant_id for tenant_id in tenants if tenant_id in only]
        changes = 0
        for tenant_id in tenants:
            async with tenant_session(self.sessionmaker, tenant_id) as session, session.begin():
                changed, notified = await self._evaluate_tenant(session, tenant_id)
            changes += changed
            if notified:
                if self.settings.alert_test_exit_before_delivery:
                    os._exit(70)  # test hook: die between the state change and its delivery
                self.on_notifications()
        return changes

    async def _evaluate_tenant(self, session: AsyncSession, tenant_id: UUID) -> tuple[int, int]:
        repository = AlertRepository(session, tenant_id)
        rules = [r for r in await repository.all(AlertRule) if r.enabled]
        states: dict[tuple[UUID, str], AlertState] = {
            (s.rule_id, s.group_key): s for s in await repository.states([r.id for r in rules])
        }
        now = self.clock()
        changed = notified = 0
        for rule in rules:
            firing = {g for (r, g), s in states.items() if r == rule.id and s.state == "firing"}
            since, until = window(rule, now, self.settings.alert_window_unit_seconds)
            measured = await measure(session, rule, since, until, firing)
            for group in sorted(set(measured) | firing):
                measurement = measured.get(group, Measurement(None, 0))
                state = states.get((rule.id, group))
                sent = await self._step(repository, rule, group, state, measurement, now)
                if sent is not None:
                    changed += 1
                    notified += sent
        return changed, notified

    async def _step(
        self,
        repository: AlertRepository,
        rule: AlertRule,
        group: str,
        state: AlertState | None,
        measurement: Measurement,
        now: datetime,
    ) -> int | None:
        """Move one group on; the number of notifications queued, None when nothing changed."""
        holds = breached(rule, measurement)
        current = state.state if state is not None else "ok"
        if state is not None:
            state.value, state.evaluated_at = measurement.value, now
        if holds and current != "firing":
            cooldown = timedelta(
                seconds=rule.cooldown_minutes * self.settings.alert_window_unit_seconds
            )
            if state is not None and state.last_fired_at and now - state.last_fired_at < cooldown:
                return None
            if state is None:
                state = AlertState(
                    rule_id=rule.id,
                    group_key=group,
                    state="firing",
                    value=measurement.value,
                    changed_at=now,
                    evaluated_at=now,
                    last_fired_at=now,
                )
                await repository.add(state)
            else:
                state.state, state.changed_at, state.last_fired_at = "firing", now, now
            return await self._notify(repository, rule, group, "firing", measurement, now)
        if not holds and current == "firing" and state is not None:
            state.state, state.changed_at = "resolved", now
            return await self._notify(repository, rule, group, "resolved", measurement, now)
        return None

    async def _notify(
        self,
        repository: AlertRepository,
        rule: AlertRule,
        group: str,
        new_state: str,
        measurement: Measurement,
        now: datetime,
    ) -> int:
        event = AlertEvent(
            id=new_id(),
            rule_id=rule.id,
            rule_name=rule.name,
            group_key=group,
            state=new_state,
            metric=rule.metric,
            op=rule.op,
            threshold=rule.threshold,
            value=measurement.value,
            count=measurement.count,
            window_minutes=rule.window_minutes,
            created_at=now,
        )
        await repository.add(event)
        data = _event_data(rule, event)
        endpoints = await repository.enabled_webhooks([UUID(str(w)) for w in rule.webhook_ids])
        for endpoint in endpoints:
            await repository.add(outbox_row(endpoint.id, event.id, f"alert.{new_state}", data))
        return len(endpoints)


def _event_data(rule: AlertRule, event: AlertEvent) -> dict[str, Any]:
    return {
        "event_id": str(event.id),
        "tenant_id": str(rule.tenant_id),
        "rule_id": str(rule.id),
        "rule_name": rule.name,
        "state": event.state,
        "metric": rule.metric,
        "op": rule.op,
        "threshold": rule.threshold,
        "value": event.value,
        "count": event.count,
        "window_minutes": rule.window_minutes,
        "filters": rule.filters or {},
        "group_by": rule.group_by,
        "group": event.group_key if event.group_key != UNGROUPED else None,
        "at": event.created_at.isoformat().replace("+00:00", "Z"),
    }
