"""Rules of alerting's API: endpoints and their secrets, rules and presets, history, re-sends.

Every change to an endpoint or a rule is written to the tenant's audit trail in the same
transaction (`webhook_endpoint` and `alert_rule` resources; create, update, delete and
`rotate_secret`), with the actor of the request. Secrets never reach the audit trail.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import signing
from app.alerts.models import AlertDelivery, AlertEvent, AlertRule, WebhookEndpoint
from app.alerts.presets import PRESETS
from app.alerts.repository import AlertRepository
from app.alerts.schemas import (
    AlertEventRead,
    AttemptRead,
    DeliveryRead,
    DeliveryStatus,
    RuleCreate,
    RuleRead,
    RuleUpdate,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)
from app.alerts.targets import UnsafeTarget, check_target
from app.audits.service import AuditService
from app.core.auth import Actor
from app.core.db import new_id, utcnow
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.pagination import Cursor
from app.core.redact import PayloadRules

REQUIRED = ("name", "metric", "op", "threshold", "window_minutes")
DEFAULT_COOLDOWN_MINUTES = 15


def _webhook_data(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
    }


def rule_read(rule: AlertRule, states: Sequence[Any] = ()) -> RuleRead:
    fields = {name: getattr(rule, name) for name in RuleRead.model_fields if name != "states"}
    fields.update(
        filters=rule.filters or {},
        webhook_ids=list(rule.webhook_ids or []),
        states=[
            {
                "group": s.group_key or None,
                "state": s.state,
                "value": s.value,
                "changed_at": s.changed_at,
                "evaluated_at": s.evaluated_at,
            }
            for s in states
        ],
    )
    return RuleRead.model_validate(fields)


def _rule_data(rule: AlertRule) -> dict[str, Any]:
    return rule_read(rule).model_dump(
        mode="json", exclude={"id", "states", "created_at", "updated_at"}
    )


def event_read(event: AlertEvent) -> AlertEventRead:
    data = {c: getattr(event, c) for c in AlertEventRead.model_fields if c != "group"}
    return AlertEventRead(**data, group=event.group_key or None)


class AlertService:
    """One tenant's alerting, acting for `actor`."""

    def __init__(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        actor: Actor,
        rules: PayloadRules,
        allow_private: bool,
    ) -> None:
        self.tenant_id = tenant_id
        self.actor = actor
        self.allow_private = allow_private
        self.repository = AlertRepository(session, tenant_id)
        self.audits = AuditService(session, rules)

    # Webhook endpoints

    async def _check_url(self, url: str) -> None:
        try:
            await check_target(url, self.allow_private)
        except UnsafeTarget as exc:
            raise Unprocessable(
                [{"loc": ["body", "url"], "msg": str(exc), "type": "url"}]
            ) from None

    async def create_webhook(self, data: WebhookCreate) -> WebhookWithSecret:
        await self._check_url(data.url)
        now = utcnow()
        endpoint = WebhookEndpoint(
            id=new_id(),
            url=data.url,
            description=data.description,
            secret=signing.new_secret(),
            enabled=True,
            created_at=now,
            updated_at=now,
        )
        await self.repository.add(endpoint)
        await self.audits.log_create(
            self.tenant_id,
            "webhook_endpoint",
            str(endpoint.id),
            _webhook_data(endpoint),
            actor=self.actor.recorded(),
        )
        return WebhookWithSecret(
            **WebhookRead.model_validate(endpoint).model_dump(), secret=endpoint.secret
        )

    async def webhook(self, endpoint_id: UUID, *, for_update: bool = False) -> WebhookEndpoint:
        endpoint = await self.repository.get(WebhookEndpoint, endpoint_id, for_update=for_update)
        if endpoint is None:
            raise NotFound(f"webhook endpoint {endpoint_id} not found")
        return endpoint

    async def webhooks(self) -> Sequence[WebhookEndpoint]:
        return await self.repository.all(WebhookEndpoint)

    async def update_webhook(self, endpoint_id: UUID, data: WebhookUpdate) -> WebhookEndpoint:
        endpoint = await self.webhook(endpoint_id, for_update=True)
        before = _webhook_data(endpoint)
        if data.url is not None and data.url != endpoint.url:
            await self._check_url(data.url)
            endpoint.url = data.url
        if "description" in data.model_fields_set:
            endpoint.description = data.description
        if data.enabled is not None:
            endpoint.enabled = data.enabled
            endpoint.disabled_reason = None if data.enabled else "disabled by the tenant"
        endpoint.updated_at = utcnow()
        await self.repository.flush()
        await self.audits.log_update(
            self.tenant_id,
            "webhook_endpoint",
            str(endpoint.id),
            before,
            _webhook_data(endpoint),
            actor=self.actor.recorded(),
        )
        return endpoint

    async def rotate_secret(self, endpoint_id: UUID) -> WebhookWithSecret:
        endpoint = await self.webhook(endpoint_id, for_update=True)
        now = utcnow()
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + signing.SECRET_OVERLAP
        endpoint.secret = signing.new_secret()
        endpoint.updated_at = now
        await self.repository.flush()
        overlap = {"previous_secret_valid_until": endpoint.previous_secret_expires_at.isoformat()}
        await self.audits.log(
            self.tenant_id,
            "rotate_secret",
            "webhook_endpoint",
            str(endpoint.id),
            metadata=overlap,
            actor=self.actor.recorded(),
        )
        return WebhookWithSecret(
            **WebhookRead.model_validate(endpoint).model_dump(), secret=endpoint.secret
        )

    async def delete_webhook(self, endpoint_id: UUID) -> None:
        endpoint = await self.webhook(endpoint_id, for_update=True)
        data = _webhook_data(endpoint)
        await self.repository.delete(endpoint)
        await self.audits.log_delete(
            self.tenant_id, "webhook_endpoint", str(endpoint_id), data, actor=self.actor.recorded()
        )

    async def test_webhook(self, endpoint_id: UUID) -> AlertDelivery:
        """Queue a `webhook.test` notification to the endpoint (sent like any other)."""
        endpoint = await self.webhook(endpoint_id)
        if not endpoint.enabled:
            raise Conflict(f"webhook endpoint {endpoint_id} is disabled; enable it first")
        payload = {"endpoint_id": str(endpoint.id), "message": "test notification"}
        delivery = outbox_row(endpoint.id, None, "webhook.test", payload)
        await self.repository.add(delivery)
        return delivery

    # Rules

    async def _check_webhooks(self, ids: Sequence[UUID]) -> None:
        known = await self.repository.webhook_ids(ids)
        if unknown := [str(i) for i in ids if i not in known]:
            raise Unprocessable(
                [
                    {
                        "loc": ["body", "webhook_ids"],
                        "type": "unknown_webhook",
                        "msg": f"unknown webhook endpoint(s): {', '.join(unknown)}",
                    }
                ]
            )

    @staticmethod
    def _check_rule(values: dict[str, Any]) -> None:
        missing = [name for name in REQUIRED if values.get(name) is None]
        if missing:
            raise Unprocessable(
                [
                    {
                        "loc": ["body", name],
                        "type": "missing",
                        "msg": "Field required (or a preset)",
                    }
                    for name in missing
                ]
            )
        if values["metric"] == "audit_changes" and (
            values.get("group_by") or any((values.get("filters") or {}).values())
        ):
            raise Unprocessable(
                [
                    {
                        "loc": ["body", "group_by"],
                        "type": "audit_changes",
                        "msg": "audit_changes counts audit rows: no filters, no group_by",
                    }
                ]
            )

    async def create_rule(self, data: RuleCreate) -> RuleRead:
        given = data.model_dump(exclude_unset=True, exclude={"preset"})
        values: dict[str, Any] = {}
        if data.preset is not None:
            values = PRESETS[data.preset].rule.model_dump(exclude_unset=True, exclude={"preset"})
        # a null field of a body with a preset is not given: the preset's value stands
        values.update({k: v for k, v in given.items() if v is not None or k not in values})
        if values.get("cooldown_minutes") is None:  # null: the default, as when left out
            values["cooldown_minutes"] = DEFAULT_COOLDOWN_MINUTES
        self._check_rule(values)
        webhook_ids = list(values.get("webhook_ids") or [])
        await self._check_webhooks(webhook_ids)
        now = utcnow()
        filters = values.get("filters") or {}
        rule = AlertRule(
            id=new_id(),
            name=values["name"],
            metric=values["metric"],
            op=values["op"],
            threshold=float(values["threshold"]),
            window_minutes=values["window_minutes"],
            min_count=values.get("min_count"),
            filters={k: v for k, v in dict(filters).items() if v is not None},
            group_by=values.get("group_by"),
            webhook_ids=[str(w) for w in webhook_ids],
            cooldown_minutes=values["cooldown_minutes"],
            enabled=values.get("enabled", True),
            preset=data.preset,
            created_at=now,
            updated_at=now,
        )
        await self.repository.add(rule)
        await self.audits.log_create(
            self.tenant_id,
            "alert_rule",
            str(rule.id),
            _rule_data(rule),
            actor=self.actor.recorded(),
        )
        return rule_read(rule)

    async def rule(self, rule_id: UUID, *, for_update: bool = False) -> AlertRule:
        rule = await self.repository.get(AlertRule, rule_id, for_update=for_update)
        if rule is None:
            raise NotFound(f"alert rule {rule_id} not found")
        return rule

    async def rule_with_states(self, rule_id: UUID) -> RuleRead:
        rule = await self.rule(rule_id)
        return rule_read(rule, await self.repository.states([rule.id]))

    async def rules(self) -> list[RuleRead]:
        rules = await self.repository.all(AlertRule)
        states = await self.repository.states([rule.id for rule in rules])
        by_rule: dict[UUID, list[Any]] = {}
        for state in states:
            by_rule.setdefault(state.rule_id, []).append(state)
        return [rule_read(rule, by_rule.get(rule.id, [])) for rule in rules]

    async def update_rule(self, rule_id: UUID, data: RuleUpdate) -> RuleRead:
        rule = await self.rule(rule_id, for_update=True)
        before = _rule_data(rule)
        changes = data.model_dump(exclude_unset=True)
        for name in ("enabled", "cooldown_minutes"):  # null means unchanged (NOT NULL columns)
            if name in changes and changes[name] is None:
                del changes[name]
        values = {**before, **changes}
        if _groups_audit_changes(values) and not _groups_audit_changes(changes):
            # valid as a body, not with what the rule holds: the rule's state is in the way
            raise Conflict(
                "the rule has filters or group_by, which audit_changes cannot use: "
                'send "filters": null and "group_by": null with it'
            )
        self._check_rule(values)
        if "webhook_ids" in changes:
            await self._check_webhooks(data.webhook_ids or [])
            changes["webhook_ids"] = [str(w) for w in data.webhook_ids or []]
        if "filters" in changes:
            changes["filters"] = {k: v for k, v in (changes["filters"] or {}).items() if v}
        if "threshold" in changes and changes["threshold"] is not None:
            changes["threshold"] = float(changes["threshold"])
        for name, value in changes.items():
            if name in REQUIRED and value is None:
                continue
            setattr(rule, name, value)
        rule.updated_at = utcnow()
        await self.repository.flush()
        await self.audits.log_update(
            self.tenant_id,
            "alert_rule",
            str(rule.id),
            before,
            _rule_data(rule),
            actor=self.actor.recorded(),
        )
        return rule_read(rule, await self.repository.states([rule.id]))

    async def delete_rule(self, rule_id: UUID) -> None:
        rule = await self.rule(rule_id, for_update=True)
        data = _rule_data(rule)
        await self.repository.delete(rule)
        await self.audits.log_delete(
            self.tenant_id, "alert_rule", str(rule_id), data, actor=self.actor.recorded()
        )

    # History

    async def events(
        self, cursor: str | None, limit: int, rule_id: UUID | None, state: str | None
    ) -> tuple[list[AlertEventRead], Cursor | None]:
        conditions = []
        if rule_id is not None:
            conditions.append(AlertEvent.rule_id == rule_id)
        if state is not None:
            conditions.append(AlertEvent.state == state)
        after = Cursor.decode(cursor) if cursor else None
        rows = await self.repository.page(AlertEvent, conditions, after, limit + 1)
        next_cursor = Cursor.of(rows[limit - 1]) if len(rows) > limit else None
        return [event_read(row) for row in rows[:limit]], next_cursor

    async def deliveries(
        self,
        cursor: str | None,
        limit: int,
        status: DeliveryStatus | None,
        endpoint_id: UUID | None,
        event_id: UUID | None,
    ) -> tuple[list[DeliveryRead], Cursor | None]:
        conditions = []
        for column, value in (
            (AlertDelivery.status, status),
            (AlertDelivery.endpoint_id, endpoint_id),
            (AlertDelivery.event_id, event_id),
        ):
            if value is not None:
                conditions.append(column == value)
        after = Cursor.decode(cursor) if cursor else None
        rows = await self.repository.page(AlertDelivery, conditions, after, limit + 1)
        next_cursor = Cursor.of(rows[limit - 1]) if len(rows) > limit else None
        return await self._with_attempts(rows[:limit]), next_cursor

    async def _with_attempts(self, rows: Sequence[AlertDelivery]) -> list[DeliveryRead]:
        attempts = await self.repository.attempts([row.id for row in rows])
        return [
            DeliveryRead(
                **{
                    name: getattr(row, name)
                    for name in DeliveryRead.model_fields
                    if name != "attempt_log"
                },
                attempt_log=[AttemptRead.model_validate(a) for a in attempts[row.id]],
            )
            for row in rows
        ]

    async def delivery(self, delivery_id: UUID, *, for_update: bool = False) -> AlertDelivery:
        row = await self.repository.get(AlertDelivery, delivery_id, for_update=for_update)
        if row is None:
            raise NotFound(f"delivery {delivery_id} not found")
        return row

    async def delivery_read(self, delivery_id: UUID) -> DeliveryRead:
        return (await self._with_attempts([await self.delivery(delivery_id)]))[0]

    async def resend(self, delivery_id: UUID) -> DeliveryRead:
        """Send a delivery again from the start of the retry schedule (same webhook-id)."""
        row = await self.delivery(delivery_id, for_update=True)
        if row.status == "pending":
            raise Conflict(f"delivery {delivery_id} is still pending; it is being retried")
        endpoint = await self.repository.get(WebhookEndpoint, row.endpoint_id)
        if endpoint is None:
            raise Conflict(f"the endpoint of delivery {delivery_id} was deleted")
        if not endpoint.enabled:
            raise Conflict(
                f"webhook endpoint {endpoint.id} is disabled ({endpoint.disabled_reason}); "
                "enable it with PATCH first"
            )
        row.status, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
        await self.repository.flush()
        return await self.delivery_read(delivery_id)


def outbox_row(
    endpoint_id: UUID,
    event_id: UUID | None,
    event_type: str,
    data: dict[str, Any],
    now: datetime | None = None,
) -> AlertDelivery:
    """A notification to send: the Standard Webhooks envelope `{type, timestamp, data}`."""
    now = now or utcnow()
    body = {"type": event_type, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data}
    return AlertDelivery(
        id=new_id(),
        endpoint_id=endpoint_id,
        event_id=event_id,
        message_id=signing.new_message_id(),
        event_type=event_type,
        payload=orjson.dumps(body).decode(),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def _groups_audit_changes(values: dict[str, Any]) -> bool:
    """Whether rule values count audit changes and also filter or group (which they cannot)."""
    return values.get("metric") == "audit_changes" and bool(
        values.get("group_by") or any((values.get("filters") or {}).values())
    )
