"""Evaluation and delivery in the test's process: states, signed webhooks, retries, 410, re-send.

The evaluator runs with a clock the test moves, so a 5-minute window passes at once.
"""

from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from standardwebhooks import Webhook

from tests.alerts.conftest import Clock, fail, make_rule, make_webhook
from tests.conftest import TenantHandle

EVENTS = "/api/v1/alerts/events"
DELIVERIES = "/api/v1/alerts/deliveries"
FAILURES = {
    "name": "failures", "metric": "failure_count", "op": ">", "threshold": 3,
    "window_minutes": 5, "cooldown_minutes": 0,
}  # fmt: skip


def verified(secret: str, received: Any) -> Any:
    """The payload, after standardwebhooks checked the signature (it raises otherwise)."""
    return Webhook(secret).verify(received.body, received.headers)


async def test_five_failures_fire_once_and_resolve_after_the_window(
    client: httpx.AsyncClient, tenant: TenantHandle, receiver: Any, evaluator: Any,
    sender_for: Any, clock: Clock,
) -> None:  # fmt: skip
    hooks, url = receiver
    hook = await make_webhook(client, tenant, url)
    rule = await make_rule(client, tenant, **FAILURES, webhook_ids=[hook["id"]])
    await fail(client, tenant, 3)
    await evaluator.run_once([UUID(tenant.id)])
    assert (await client.get(EVENTS, headers=tenant.headers)).json() == []
    await fail(client, tenant, 2)
    assert await evaluator.run_once([UUID(tenant.id)]) == 1
    assert await evaluator.run_once([UUID(tenant.id)]) == 0  # still firing: nothing new
    sender = sender_for()
    assert await sender.run_once() == 1
    (firing,) = await hooks.wait_for(1)
    payload = verified(hook["secret"], firing)
    assert payload["type"] == "alert.firing"
    assert payload["data"]["rule_id"] == rule["id"]
    assert (payload["data"]["value"], payload["data"]["count"]) == (5, 5)
    assert await sender.run_once() == 0  # delivered once

    clock.offset = timedelta(minutes=6)  # the failures leave the window
    assert await evaluator.run_once([UUID(tenant.id)]) == 1
    assert await sender.run_once() == 1
    resolved = (await hooks.wait_for(2))[1]
    assert verified(hook["secret"], resolved)["type"] == "alert.resolved"
    assert resolved.headers["webhook-id"] != firing.headers["webhook-id"]
    await sender.close()

    events = (await client.get(EVENTS, headers=tenant.headers)).json()
    assert [(e["state"], e["value"]) for e in events] == [("resolved", 0), ("firing", 5)]
    deliveries = (await client.get(DELIVERIES, headers=tenant.headers)).json()
    assert [d["status"] for d in deliveries] == ["delivered", "delivered"]
    attempt = deliveries[0]["attempt_log"][0]
    assert attempt["status_code"] == 204 and attempt["duration_ms"] >= 0
    states = await client.get(f"/api/v1/alerts/rules/{rule['id']}", headers=tenant.headers)
    assert states.json()["states"][0]["state"] == "resolved"


async def test_retries_then_410_disables_the_endpoint_and_resend(
    client: httpx.AsyncClient, tenant: TenantHandle, receiver: Any, evaluator: Any,
    sender_for: Any,
) -> None:  # fmt: skip
    hooks, url = receiver
    hook = await make_webhook(client, tenant, url)
    await make_rule(client, tenant, **FAILURES, webhook_ids=[hook["id"]])
    await fail(client, tenant, 4)
    await evaluator.run_once([UUID(tenant.id)])
    sender = sender_for(alert_retry_schedule="0,0,0")
    hooks.script = [500, 503]
    for _ in range(3):
        await sender.run_once()
    assert len(hooks.received) == 3
    ids = {r.headers["webhook-id"] for r in hooks.received}
    assert len(ids) == 1  # the same message id on every retry
    (delivery,) = (await client.get(DELIVERIES, headers=tenant.headers)).json()
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 503, 204]

    resend = await client.post(f"{DELIVERIES}/{delivery['id']}/resend", headers=tenant.headers)
    assert resend.status_code == 202 and resend.json()["status"] == "pending"
    hooks.status = 410
    await sender.run_once()
    one = (await client.get(f"{DELIVERIES}/{delivery['id']}", headers=tenant.headers)).json()
    assert (one["status"], one["last_status_code"]) == ("failed", 410)
    endpoint = await client.get(f"/api/v1/alerts/webhooks/{hook['id']}", headers=tenant.headers)
    assert endpoint.json()["enabled"] is False
    assert "410" in endpoint.json()["disabled_reason"]
    refused = await client.post(f"{DELIVERIES}/{delivery['id']}/resend", headers=tenant.headers)
    assert refused.status_code == 409 and "disabled" in refused.json()["detail"]
    await sender.close()


async def test_gives_up_after_the_schedule(
    client: httpx.AsyncClient, tenant: TenantHandle, receiver: Any, sender_for: Any
) -> None:
    hooks, url = receiver
    hook = await make_webhook(client, tenant, url)
    hooks.status = 500
    queued = await client.post(f"/api/v1/alerts/webhooks/{hook['id']}/test", headers=tenant.headers)
    assert queued.status_code == 202
    sender = sender_for(alert_retry_schedule="0")
    await sender.run_once()
    await sender.run_once()
    await sender.run_once()
    (delivery,) = (await client.get(DELIVERIES, headers=tenant.headers)).json()
    assert (delivery["status"], delivery["attempts"]) == ("failed", 2)
    assert verified(hook["secret"], hooks.received[0])["type"] == "webhook.test"
    failed = await client.get(DELIVERIES, params={"status": "failed"}, headers=tenant.headers)
    assert len(failed.json()) == 1
    await sender.close()


async def test_rotation_signs_with_both_secrets(
    client: httpx.AsyncClient, tenant: TenantHandle, receiver: Any, sender_for: Any
) -> None:
    hooks, url = receiver
    hook = await make_webhook(client, tenant, url)
    rotated = await client.post(
        f"/api/v1/alerts/webhooks/{hook['id']}/rotate-secret", headers=tenant.headers
    )
    await client.post(f"/api/v1/alerts/webhooks/{hook['id']}/test", headers=tenant.headers)
    sender = sender_for()
    await sender.run_once()
    (received,) = await hooks.wait_for(1)
    assert verified(rotated.json()["secret"], received)["type"] == "webhook.test"
    assert verified(hook["secret"], received)["type"] == "webhook.test"
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    await sender.close()


async def test_grouped_latency_min_count_and_cooldown(
    client: httpx.AsyncClient, tenant: TenantHandle, evaluator: Any, clock: Clock
) -> None:
    await make_rule(client, tenant, preset="provider_latency", cooldown_minutes=30, min_count=2)
    await make_rule(client, tenant, preset="error_rate", window_minutes=60)
    items = [
        {"action_type": "crm", "provider_name": "slowco", "execution_time_ms": 3000},
        {"action_type": "crm", "provider_name": "slowco", "execution_time_ms": 2600},
        {"action_type": "crm", "provider_name": "fastco", "execution_time_ms": 20},
        {"action_type": "crm", "provider_name": "fastco", "execution_time_ms": 30},
        {"action_type": "crm", "provider_name": "lonely", "execution_time_ms": 9000},
        {"action_type": "crm", "status": "failed"},  # 1 failure in 6: no alert under 20 rows
    ]
    response = await client.post("/api/v1/logs/actions/batch", json=items, headers=tenant.headers)
    assert response.status_code == 201
    assert await evaluator.run_once([UUID(tenant.id)]) == 1
    (event,) = (await client.get(EVENTS, headers=tenant.headers)).json()
    assert (event["group"], event["value"], event["state"]) == ("slowco", 2800, "firing")
    clock.offset = timedelta(minutes=16)
    assert (
        await evaluator.run_once([UUID(tenant.id)]) == 1
    )  # resolved: the window moved past the rows
    response = await client.post(
        "/api/v1/logs/actions/batch", json=items[:2], headers=tenant.headers
    )
    clock.offset = timedelta(minutes=16, seconds=5)
    # the same rows breach again within the cooldown of the last firing: no new notification
    assert await evaluator.run_once([UUID(tenant.id)]) == 0


async def test_audit_activity_and_events_paging(
    client: httpx.AsyncClient, tenant: TenantHandle, evaluator: Any
) -> None:
    await make_rule(client, tenant, preset="audit_activity", threshold=3)
    for n in range(4):
        body = {"action": "update", "resource_type": "doc", "resource_id": str(n),
                "before": {"v": 0}, "after": {"v": 1}}  # fmt: skip
        assert (
            await client.post("/api/v1/logs/audits", json=body, headers=tenant.headers)
        ).status_code == 201
    assert await evaluator.run_once([UUID(tenant.id)]) == 1
    page = await client.get(EVENTS, params={"limit": 1, "state": "firing"}, headers=tenant.headers)
    assert page.json()[0]["metric"] == "audit_changes"
    assert page.json()[0]["value"] >= 4
    assert "x-next-cursor" not in page.headers
    bad = await client.get(EVENTS, params={"state": "sleeping"}, headers=tenant.headers)
    assert bad.status_code == 422


async def test_other_tenants_history_is_not_visible(
    client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle, receiver: Any
) -> None:
    _, url = receiver
    hook = await make_webhook(client, tenant, url)
    queued = await client.post(f"/api/v1/alerts/webhooks/{hook['id']}/test", headers=tenant.headers)
    delivery_id = queued.json()["id"]
    theirs = other_tenant.headers
    assert (await client.get(f"{DELIVERIES}/{delivery_id}", headers=theirs)).status_code == 404
    resend = await client.post(f"{DELIVERIES}/{delivery_id}/resend", headers=theirs)
    assert resend.status_code == 404
    assert (await client.get(DELIVERIES, headers=theirs)).json() == []
    assert (await client.get(EVENTS, headers=theirs)).json() == []


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_one_evaluator_at_a_time(app: Any, evaluator: Any) -> None:
    """While one worker holds the evaluation lock, another skips its round."""
    from sqlalchemy import func, select

    from app.alerts.evaluator import LOCK_KEY

    async with app.state.engine.connect() as other:
        assert await other.scalar(select(func.pg_try_advisory_lock(LOCK_KEY)))
        try:
            assert await evaluator.run_once([]) is None
        finally:
            await other.scalar(select(func.pg_advisory_unlock(LOCK_KEY)))
    assert await evaluator.run_once([]) == 0


async def test_no_storm_while_the_database_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rounds against a database that cannot be reached back off and log the outage once."""
    import asyncio
    import logging

    from app.alerts.worker import AlertWorker
    from app.core.config import Settings
    from app.core.db import create_engine, create_sessionmaker

    settings = Settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none",
        alert_eval_seconds=0.05,
        alert_send_seconds=0.05,
        environment="test",
    )
    engine = create_engine(settings)
    worker = AlertWorker(engine, create_sessionmaker(engine), settings)
    calls = 0
    real = worker.evaluator.run_once

    async def counted(only: list[UUID] | None = None) -> int | None:
        nonlocal calls
        calls += 1
        return await real(only)

    worker.evaluator.run_once = counted  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="actionlog.alerts"):
        worker.start()
        await asyncio.sleep(1.6)
        await worker.close()
    await engine.dispose()
    # 0.05 s doubling: rounds at about 0, 0.1, 0.3, 0.7, 1.5 s instead of 32 at a fixed pace
    assert 2 <= calls <= 6
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "evaluation failed" in w]) == 1
    assert len([w for w in warnings if "sender failed" in w]) == 1
