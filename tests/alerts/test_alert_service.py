"""Alerting in real service processes, with a minute shortened to a second
(ALERT_WINDOW_UNIT_SECONDS=1) and evaluation every half second."""

import asyncio
from typing import Any

import httpx
from standardwebhooks import Webhook

from tests.alerts.conftest import fail, make_rule, make_webhook
from tests.conftest import TenantHandle
from tests.live import start_service

FAST = {
    "ALERT_EVAL_SECONDS": "0.5",
    "ALERT_WINDOW_UNIT_SECONDS": "1",
    "ALERT_SEND_SECONDS": "0.2",
    "WEBHOOK_ALLOW_PRIVATE": "true",
}
RULE = {
    "name": "failures", "metric": "failure_count", "op": ">", "threshold": 3,
    "window_minutes": 5, "cooldown_minutes": 0,
}  # fmt: skip


def workers(backend: str) -> int:
    return 2 if backend == "postgresql" else 1


async def test_firing_then_resolved_signed_webhooks(
    client: httpx.AsyncClient, tenant: TenantHandle, receiver: Any, database_url: str,
    backend: str,
) -> None:  # fmt: skip
    hooks, url = receiver
    hook = await make_webhook(client, tenant, url)
    await make_rule(client, tenant, **RULE, webhook_ids=[hook["id"]])
    service = await start_service(database_url, workers(backend), **FAST)
    try:
        async with httpx.AsyncClient(base_url=service.url) as http:
            for _ in range(5):
                response = await http.post(
                    "/api/v1/logs/actions",
                    json={"action_type": "crm_create", "status": "failed"},
                    headers=tenant.headers,
                )
                assert response.status_code == 201
        (firing,) = await hooks.wait_for(1, within=20)
        payload = Webhook(hook["secret"]).verify(firing.body, firing.headers)
        assert payload["type"] == "alert.firing" and payload["data"]["value"] == 5
        firing_seen = asyncio.get_running_loop().time()
        resolved = (await hooks.wait_for(2, within=20))[1]
        assert Webhook(hook["secret"]).verify(resolved.body, resolved.headers)["type"] == (
            "alert.resolved"
        )
        assert asyncio.get_running_loop().time() - firing_seen > 2  # after the 5 s window
        await asyncio.sleep(1.5)
        assert len(hooks.received) == 2  # each sent once, whatever the number of workers
    finally:
        await service.stop()


async def test_a_crash_between_state_change_and_delivery_loses_nothing(
    client: httpx.AsyncClient, tenant: TenantHandle, receiver: Any, database_url: str
) -> None:
    hooks, url = receiver
    hook = await make_webhook(client, tenant, url)
    await make_rule(client, tenant, **RULE, webhook_ids=[hook["id"]])
    doomed = await start_service(database_url, 1, **FAST, ALERT_TEST_EXIT_BEFORE_DELIVERY="true")
    await fail(client, tenant, 5)
    code = await asyncio.wait_for(doomed.process.wait(), 30)
    assert code == 70  # died right after committing the state change
    assert hooks.received == []
    pending = await client.get("/api/v1/alerts/deliveries", headers=tenant.headers)
    assert [d["status"] for d in pending.json()] == ["pending"]
    restarted = await start_service(database_url, 1, **FAST)
    try:
        (firing,) = await hooks.wait_for(1, within=20)
        assert Webhook(hook["secret"]).verify(firing.body, firing.headers)["type"] == (
            "alert.firing"
        )
        delivered = await client.get("/api/v1/alerts/deliveries", headers=tenant.headers)
        for _ in range(50):
            if delivered.json()[0]["status"] == "delivered":
                break
            await asyncio.sleep(0.1)
            delivered = await client.get("/api/v1/alerts/deliveries", headers=tenant.headers)
        assert [d["status"] for d in delivered.json()] == ["delivered"]
    finally:
        await restarted.stop()
