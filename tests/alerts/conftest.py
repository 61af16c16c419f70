"""Fixtures of the alert tests: a real webhook receiver on loopback, evaluation and sending
steps run by the test (the test application's own loops are off)."""

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from app.alerts.evaluator import AlertEvaluator
from app.alerts.sender import OutboxSender
from app.core.db import utcnow
from tests.conftest import TenantHandle
from tests.live import WebhookReceiver, webhook_receiver


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    async with webhook_receiver() as found:
        yield found


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def evaluator(app: Any, clock: Clock) -> AlertEvaluator:
    state = app.state
    return AlertEvaluator(
        state.engine,
        state.sessionmaker,
        state.settings,
        clock=clock,
        queue_engine=state.maintenance_engine,
    )


@pytest.fixture
def sender_for(app: Any) -> Callable[..., OutboxSender]:
    def make(**overrides: Any) -> OutboxSender:
        settings = app.state.settings.model_copy(update=overrides)
        return OutboxSender(app.state.engine, settings, app.state.maintenance_engine)

    return make


async def make_webhook(client: httpx.AsyncClient, tenant: TenantHandle, url: str) -> Any:
    response = await client.post(
        "/api/v1/alerts/webhooks", json={"url": url}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def make_rule(client: httpx.AsyncClient, tenant: TenantHandle, **body: Any) -> Any:
    response = await client.post("/api/v1/alerts/rules", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def fail(client: httpx.AsyncClient, tenant: TenantHandle, count: int, **body: Any) -> None:
    items = [{"action_type": "crm_create", "status": "failed", **body} for _ in range(count)]
    response = await client.post("/api/v1/logs/actions/batch", json=items, headers=tenant.headers)
    assert response.status_code == 201, response.text
