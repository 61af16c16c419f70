"""`actionlog alerts …`: the preset rules for a tenant, its rules, and a test webhook.

actionlog alerts presets TENANT [--webhook ID ...]   create the four preset rules
actionlog alerts rules TENANT [--json]               list the tenant's rules and states
actionlog alerts test-fire TENANT WEBHOOK_ID         send a signed webhook.test now
"""

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.models import AlertDelivery
from app.alerts.presets import PRESETS
from app.alerts.schemas import RuleCreate
from app.alerts.service import AlertService
from app.core.cli import CLI_ACTOR
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.redact import PayloadRules
from app.tenants.cli import tenant_service


def _run(
    settings: Settings, work: Callable[[AsyncSession, AlertService], Awaitable[Any]], tenant: str
) -> Any:
    async def run() -> Any:
        engine = create_engine(settings, as_owner=True)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                service = AlertService(
                    session,
                    (await tenant_service(session, settings).get_by_id_or_slug(tenant)).id,
                    CLI_ACTOR,
                    PayloadRules.from_settings(settings),
                    settings.webhook_allow_private,
                )
                return await work(session, service)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def cmd_presets(args: argparse.Namespace, settings: Settings) -> None:
    webhooks = [UUID(w) for w in args.webhook or []]

    async def work(_: AsyncSession, service: AlertService) -> list[Any]:
        return [
            await service.create_rule(RuleCreate(preset=name, webhook_ids=webhooks))
            for name in PRESETS
        ]

    for rule in _run(settings, work, args.tenant):
        print(f"{rule.id}  {rule.preset}  {rule.name}")


def cmd_rules(args: argparse.Namespace, settings: Settings) -> None:
    async def work(_: AsyncSession, service: AlertService) -> list[Any]:
        return await service.rules()

    rules = _run(settings, work, args.tenant)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in rules]))
        return
    for rule in rules:
        firing = [s.group or "-" for s in rule.states if s.state == "firing"]
        state = f"firing ({', '.join(firing)})" if firing else "ok"
        print(
            f"{rule.id}  {rule.metric} {rule.op} {rule.threshold:g} in {rule.window_minutes} min"
            f"  {'enabled' if rule.enabled else 'disabled'}  {state}  {rule.name}"
        )


def cmd_test_fire(args: argparse.Namespace, settings: Settings) -> None:
    async def work(_: AsyncSession, service: AlertService) -> UUID:
        return (await service.test_webhook(UUID(args.webhook_id))).id

    delivery_id = _run(settings, work, args.tenant)

    async def send() -> Any:
        engine = create_engine(settings, as_owner=True)
        from app.alerts.sender import OutboxSender  # an HTTP client: for this command only

        sender = OutboxSender(engine, settings)
        try:
            async with engine.connect() as connection:
                table = AlertDelivery.__table__
                row = (
                    await connection.execute(select(table).where(table.c.id == delivery_id))
                ).one()
            return await sender.attempt(row)
        finally:
            await sender.close()
            await engine.dispose()

    code = asyncio.run(send())
    outcome = f"answered {code}" if code is not None else "did not answer"
    print(f"delivery {delivery_id}: the endpoint {outcome}")


def add_commands(commands: Any) -> None:
    alerts = commands.add_parser("alerts", help="alert rules and webhooks").add_subparsers(
        dest="alerts_command", required=True
    )
    presets = alerts.add_parser("presets", help="create the four preset rules for a tenant")
    presets.add_argument("tenant", help="tenant id or slug")
    presets.add_argument("--webhook", action="append", help="webhook endpoint id (repeatable)")
    presets.set_defaults(handler=cmd_presets)
    rules = alerts.add_parser("rules", help="list a tenant's rules")
    rules.add_argument("tenant")
    rules.add_argument("--json", action="store_true")
    rules.set_defaults(handler=cmd_rules)
    fire = alerts.add_parser("test-fire", help="send a signed webhook.test to an endpoint now")
    fire.add_argument("tenant")
    fire.add_argument("webhook_id")
    fire.set_defaults(handler=cmd_test_fire)
