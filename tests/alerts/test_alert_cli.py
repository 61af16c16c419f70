"""`actionlog alerts …` as a user runs it: presets, the rules listing, test-fire."""

import json
from typing import Any

import httpx
from standardwebhooks import Webhook

from tests.alerts.conftest import make_webhook
from tests.conftest import TenantHandle
from tests.test_cli import actionlog, one_error_line


async def test_presets_rules_and_test_fire(
    client: httpx.AsyncClient, tenant: TenantHandle, receiver: Any, database_url: str
) -> None:
    hooks, url = receiver
    hook = await make_webhook(client, tenant, url)
    created = await actionlog(
        database_url, "alerts", "presets", tenant.slug, "--webhook", hook["id"]
    )
    assert created.code == 0, created.err
    assert len(created.out.strip().splitlines()) == 4
    listed = await actionlog(database_url, "alerts", "rules", tenant.slug, "--json")
    rules = json.loads(listed.out)
    assert {r["preset"] for r in rules} == {
        "error_rate", "provider_latency", "failure_spike", "audit_activity"
    }  # fmt: skip
    assert all(r["webhook_ids"] == [hook["id"]] for r in rules)
    text = await actionlog(database_url, "alerts", "rules", tenant.id)
    assert "latency_avg > 2000 in 15 min" in text.out
    trail = await client.get(
        "/api/v1/logs/audits", params={"resource_type": "alert_rule"}, headers=tenant.headers
    )
    assert {row["user_id"] for row in trail.json()} == {"cli"}

    env = {"WEBHOOK_ALLOW_PRIVATE": "true"}
    fired = await actionlog(database_url, "alerts", "test-fire", tenant.slug, hook["id"], env=env)
    assert fired.code == 0, fired.err
    assert "answered 204" in fired.out
    (received,) = await hooks.wait_for(1)
    assert Webhook(hook["secret"]).verify(received.body, received.headers)["type"] == (
        "webhook.test"
    )
    missing = await actionlog(database_url, "alerts", "rules", "no-such-tenant")
    assert "not found" in one_error_line(missing)
