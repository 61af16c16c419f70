"""Alerting in real service processes, with a minute shortened to a second
(ALERT_WINDOW_UNIT_SECONDS=1) and evaluation every half second.

Each test has a database of its own (the service migrates it on start), so that the service
evaluates only this test's rules.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.alerts.conftest import fail, make_rule, make_webhook
from tests.conftest import ADMIN, ADMIN_TOKEN, TenantHandle, create_tenant
from tests.live import Process, start_service

FAST = {
    "ALERT_EVAL_SECONDS": "0.5",
    "ALERT_WINDOW_UNIT_SECONDS": "1",
    "ALERT_SEND_SECONDS": "0.2",
    "WEBHOOK_ALLOW_PRIVATE": "true",
    "ADMIN_TOKEN": ADMIN_TOKEN,
}
RULE = {
    "name": "failures", "metric": "failure_count", "op": ">", "threshold": 3,
    "window_minutes": 5, "cooldown_minutes": 0,
}  # fmt: skip


def workers(backend: str) -> int:
    return 2 if backend == "postgresql" else 1


@pytest.fixture
async def service(empty_database_url: str, backend: str) -> AsyncIterator[Process]:
    process = await start_service(empty_database_url, workers(backend), **FAST)
    yield process
    await process.stop()


async def tenant_of(http: httpx.AsyncClient) -> TenantHandle:
    assert ADMIN  # the admin token of the tests, given to the service as ADMIN_TOKEN
    return await create_tenant(http, "Alerted")


async def test_firing_then_resolved_signed_webhooks(service: Process, receiver: Any) -> None:
    hooks, url = receiver
    async with httpx.AsyncClient(base_url=service.url) as http:
        tenant = await tenant_of(http)
        hook = await make_webhook(http, tenant, url)
        await make_rule(http, tenant, **RULE, webhook_ids=[hook["id"]])
        for _ in range(5):  # one at a time: with two workers, through both
            async with httpx.AsyncClient(base_url=service.url) as one:
                response = await one.post(
                    "/api/v1/logs/actions",
                    json={"action_type": "crm_create", "status": "failed"},
                    headers=tenant.headers,
                )
            assert response.status_code == 201
        (firing,) = await hooks.wait_for(1, within=20)
        payload = Webhook(hook["secret"]).verify(firing.body, firing.headers)
        # it fires as soon as a 4th failure is in the window (an evaluation may fall between posts)
        assert payload["type"] == "alert.firing" and payload["data"]["value"] in (4, 5)
        firing_seen = asyncio.get_running_loop().time()
        resolved = (await hooks.wait_for(2, within=20))[1]
        assert Webhook(hook["secret"]).verify(resolved.body, resolved.headers)["type"] == (
            "alert.resolved"
        )
        assert asyncio.get_running_loop().time() - firing_seen > 2  # after the 5 s window
        await asyncio.sleep(1.5)
        assert len(hooks.received) == 2  # each sent once, whatever the number of workers
        events = (await http.get("/api/v1/alerts/events", headers=tenant.headers)).json()
        assert [e["state"] for e in events] == ["resolved", "firing"]


async def test_a_crash_between_state_change_and_delivery_loses_nothing(
    empty_database_url: str, receiver: Any
) -> None:
    hooks, url = receiver
    setup = await start_service(empty_database_url, 1, **FAST)
    try:
        async with httpx.AsyncClient(base_url=setup.url) as http:
            tenant = await tenant_of(http)
            hook = await make_webhook(http, tenant, url)
            await make_rule(
                http, tenant, **{**RULE, "window_minutes": 600}, webhook_ids=[hook["id"]]
            )
    finally:
        await setup.stop()
    doomed = await start_service(
        empty_database_url, 1, **FAST, ALERT_TEST_EXIT_BEFORE_DELIVERY="true"
    )
    async with httpx.AsyncClient(base_url=doomed.url) as http:
        await fail(http, tenant, 5)
    code = await asyncio.wait_for(doomed.process.wait(), 60)
    assert code == 70  # died right after committing the state change
    assert hooks.received == []
    restarted = await start_service(empty_database_url, 1, **FAST)
    try:
        async with httpx.AsyncClient(base_url=restarted.url) as http:
            (firing,) = await hooks.wait_for(1, within=20)
            assert Webhook(hook["secret"]).verify(firing.body, firing.headers)["type"] == (
                "alert.firing"
            )
            for _ in range(50):
                deliveries = (
                    await http.get("/api/v1/alerts/deliveries", headers=tenant.headers)
                ).json()
                if deliveries[0]["status"] == "delivered":
                    break
                await asyncio.sleep(0.1)
            assert [d["status"] for d in deliveries] == ["delivered"]
            # the attempt before the crash never happened: one attempt, after the restart
            assert len(deliveries[0]["attempt_log"]) == 1
    finally:
        await restarted.stop()
