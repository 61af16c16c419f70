"""Webhook endpoints and alert rules over HTTP: scopes, bodies, isolation, the audit trail."""

from typing import Any
from uuid import UUID

import httpx
import pytest

from app.alerts.service import AlertService
from app.core.auth import Actor
from app.core.errors import Unprocessable
from app.core.redact import PayloadRules
from tests.conftest import TenantHandle, create_key

WEBHOOKS = "/api/v1/alerts/webhooks"
RULES = "/api/v1/alerts/rules"
AUDITS = "/api/v1/logs/audits"
RULE = {
    "name": "failures", "metric": "failure_count", "op": ">", "threshold": 3,
    "window_minutes": 5, "min_count": None, "filters": {"action_type": "crm_create"},
    "group_by": None, "webhook_ids": [], "cooldown_minutes": 10,
}  # fmt: skip


async def webhook(client: httpx.AsyncClient, tenant: TenantHandle, **body: Any) -> Any:
    body = {"url": "http://127.0.0.1:9/hooks", "description": "ops", **body}
    response = await client.post(WEBHOOKS, json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()


class TestAccess:
    @pytest.mark.parametrize("path", [WEBHOOKS, RULES, "/api/v1/alerts/deliveries"])
    async def test_anonymous(self, client: httpx.AsyncClient, path: str) -> None:
        assert (await client.get(path)).status_code == 401

    @pytest.mark.parametrize("path", [WEBHOOKS, RULES, "/api/v1/alerts/deliveries"])
    async def test_missing_scope(
        self, client: httpx.AsyncClient, tenant: TenantHandle, path: str
    ) -> None:
        key = await create_key(client, tenant, ["read", "write"])
        response = await client.get(path, headers={"X-API-Key": key})
        assert response.status_code == 403
        assert "admin" in response.json()["detail"]

    async def test_events_need_read(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        write_only = await create_key(client, tenant, ["write"])
        events = "/api/v1/alerts/events"
        assert (await client.get(events, headers={"X-API-Key": write_only})).status_code == 403
        reader = await create_key(client, tenant, ["read"])
        assert (await client.get(events, headers={"X-API-Key": reader})).json() == []


async def test_webhook_lifecycle_and_audit_trail(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    created = await webhook(client, tenant)
    secret = created["secret"]
    assert secret.startswith("whsec_")
    path = f"{WEBHOOKS}/{created['id']}"
    listed = (await client.get(WEBHOOKS, headers=tenant.headers)).json()
    assert [w["id"] for w in listed] == [created["id"]]
    one = (await client.get(path, headers=tenant.headers)).json()
    assert "secret" not in one and "secret" not in listed[0]
    assert one["enabled"] is True
    patched = await client.patch(
        path, json={"description": "pager", "enabled": False}, headers=tenant.headers
    )
    assert patched.status_code == 200
    assert (patched.json()["description"], patched.json()["enabled"]) == ("pager", False)
    rotated = await client.post(f"{path}/rotate-secret", headers=tenant.headers)
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != secret
    assert (await client.delete(path, headers=tenant.headers)).status_code == 204
    assert (await client.get(path, headers=tenant.headers)).status_code == 404
    trail = (
        await client.get(
            f"{AUDITS}/resource/webhook_endpoint/{created['id']}", headers=tenant.headers
        )
    ).json()
    assert [row["action"] for row in trail] == ["create", "update", "rotate_secret", "delete"]
    assert secret not in str(trail) and rotated.json()["secret"] not in str(trail)
    assert trail[0]["user_id"].startswith("key:")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http://127.0.0.1:9/x", "extra": 1}, "extra"),
        ({"description": "no url"}, "url"),
    ],
)
async def test_bad_webhook_bodies(
    client: httpx.AsyncClient, tenant: TenantHandle, body: dict[str, Any], field: str
) -> None:
    response = await client.post(WEBHOOKS, json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert field in response.text


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x", "http://localhost:8080/x", "http://10.1.2.3/x",
        "http://192.168.0.10/x", "http://169.254.169.254/latest/meta-data", "http://[::1]/x",
        "http://[fe80::1]/x", "http://0.0.0.0/x", "http://[::ffff:127.0.0.1]/x",
    ],
)  # fmt: skip
async def test_private_targets_are_refused(
    engine: Any, tenant: TenantHandle, url: str, settings: Any
) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.alerts.schemas import WebhookCreate

    async with AsyncSession(engine) as session:
        service = AlertService(
            session,
            UUID(tenant.id),
            Actor("t"),
            PayloadRules.from_settings(settings),
            allow_private=False,
        )
        with pytest.raises(Unprocessable) as refused:
            await service.create_webhook(WebhookCreate(url=url))
        await session.rollback()
    assert "WEBHOOK_ALLOW_PRIVATE" in str(refused.value.detail)


async def test_rule_lifecycle_with_the_issue_body(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    hook = await webhook(client, tenant)
    response = await client.post(
        RULES, json={**RULE, "webhook_ids": [hook["id"]]}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    rule = response.json()
    filters = {"action_type": "crm_create", "provider_name": None, "service": None}
    for name, value in {**RULE, "webhook_ids": [hook["id"]], "filters": filters}.items():
        assert rule[name] == value, name
    assert rule["enabled"] is True and rule["states"] == []
    path = f"{RULES}/{rule['id']}"
    assert (await client.get(path, headers=tenant.headers)).json()["name"] == "failures"
    patched = await client.patch(
        path, json={"threshold": 5, "group_by": "provider_name"}, headers=tenant.headers
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["threshold"], patched.json()["group_by"]) == (5, "provider_name")
    listed = (await client.get(RULES, headers=tenant.headers)).json()
    assert [r["id"] for r in listed] == [rule["id"]]
    assert (await client.delete(path, headers=tenant.headers)).status_code == 204
    assert (await client.get(path, headers=tenant.headers)).status_code == 404
    trail = (
        await client.get(f"{AUDITS}/resource/alert_rule/{rule['id']}", headers=tenant.headers)
    ).json()
    assert [row["action"] for row in trail] == ["create", "update", "delete"]
    assert {d["path"] for d in trail[1]["changes"]["diff"]} == {"threshold", "group_by"}


async def test_presets(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    presets = (await client.get("/api/v1/alerts/presets", headers=tenant.headers)).json()
    assert {p["preset"] for p in presets} == {
        "error_rate", "provider_latency", "failure_spike", "audit_activity"
    }  # fmt: skip
    response = await client.post(
        RULES, json={"preset": "provider_latency", "threshold": 2500}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    rule = response.json()
    assert (rule["metric"], rule["op"], rule["threshold"]) == ("latency_avg", ">", 2500)
    assert (rule["group_by"], rule["preset"]) == ("provider_name", "provider_latency")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in RULE.items() if k != "metric"}, "metric"),
        ({**RULE, "metric": "cpu"}, "metric"),
        ({**RULE, "op": "=="}, "op"),
        ({**RULE, "window_minutes": 0}, "window_minutes"),
        ({**RULE, "min_count": 0}, "min_count"),
        ({**RULE, "group_by": "user_id"}, "group_by"),
        ({**RULE, "filters": {"user_id": "x"}}, "user_id"),
        ({**RULE, "webhook_ids": ["not-a-uuid"]}, "webhook_ids"),
        ({**RULE, "webhook_ids": ["01a2337e-4bc5-73aa-9f62-29313e41e47c"]}, "webhook_ids"),
        ({**RULE, "metric": "audit_changes", "group_by": "action_type"}, "group_by"),
        ({"preset": "nope"}, "preset"),
    ],
)
async def test_bad_rule_bodies(
    client: httpx.AsyncClient, tenant: TenantHandle, body: dict[str, Any], field: str
) -> None:
    response = await client.post(RULES, json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert field in response.text


async def test_another_tenants_endpoints_and_rules_are_not_found(
    client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    hook = await webhook(client, tenant)
    rule = (await client.post(RULES, json=RULE, headers=tenant.headers)).json()
    theirs = other_tenant.headers
    for method, path in [
        ("GET", f"{WEBHOOKS}/{hook['id']}"), ("PATCH", f"{WEBHOOKS}/{hook['id']}"),
        ("DELETE", f"{WEBHOOKS}/{hook['id']}"), ("POST", f"{WEBHOOKS}/{hook['id']}/rotate-secret"),
        ("POST", f"{WEBHOOKS}/{hook['id']}/test"), ("GET", f"{RULES}/{rule['id']}"),
        ("PATCH", f"{RULES}/{rule['id']}"), ("DELETE", f"{RULES}/{rule['id']}"),
    ]:  # fmt: skip
        body = {} if method == "PATCH" else None
        response = await client.request(method, path, json=body, headers=theirs)
        assert response.status_code == 404, (method, path, response.text)
    assert (await client.get(WEBHOOKS, headers=theirs)).json() == []
    assert (await client.get(RULES, headers=theirs)).json() == []
    # their rule cannot name our endpoint
    stolen = await client.post(RULES, json={**RULE, "webhook_ids": [hook["id"]]}, headers=theirs)
    assert stolen.status_code == 422
