"""Answers at the edges of the API, on both databases: integral numbers, methods a path lacks,
bodies that cannot be used, secrets in prose, the API docs' CSP and null rule fields.

Each test sends what a client could send and checks the whole answer: the status, the field
named and the wording, and (for writes) what was stored.
"""

import base64
import hashlib
import re
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, TenantHandle, create_tenant

ACTIONS = "/api/v1/logs/actions"
AUDITS = "/api/v1/logs/audits"
RULES = "/api/v1/alerts/rules"
TENANTS = "/api/v1/admin/tenants"
JSON = {"Content-Type": "application/json"}
RULE = {"name": "failures", "metric": "failure_count", "op": ">", "threshold": 3,
        "window_minutes": 5}  # fmt: skip


async def _running(client: httpx.AsyncClient, tenant: TenantHandle) -> str:
    body = {"action_type": "job", "status": "in_progress"}
    response = await client.post(ACTIONS, json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


class TestIntegralNumbers:
    async def test_an_integral_number_is_an_integer_on_every_write(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        one = await client.post(
            ACTIONS, json={"action_type": "x", "execution_time_ms": 3291.0}, headers=tenant.headers
        )
        batch = await client.post(
            f"{ACTIONS}/batch",
            json=[{"action_type": "x", "execution_time_ms": 1e3}],
            headers=tenant.headers,
        )
        running = await _running(client, tenant)
        patched = await client.patch(
            f"{ACTIONS}/{running}",
            json={"status": "success", "execution_time_ms": 42.0},
            headers=tenant.headers,
        )
        assert one.status_code == 201, one.text
        assert one.json()["execution_time_ms"] == 3291
        assert batch.status_code == 201, batch.text
        (batch_id,) = batch.json()["ids"]
        stored = await client.get(f"{ACTIONS}/{batch_id}", headers=tenant.headers)
        assert stored.json()["execution_time_ms"] == 1000
        assert patched.status_code == 200, patched.text
        assert patched.json()["execution_time_ms"] == 42

    async def test_a_keyed_write_takes_it_too(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        headers = {**tenant.headers, "Idempotency-Key": uuid.uuid4().hex}
        body = {"action_type": "x", "execution_time_ms": 7.0}
        response = await client.post(ACTIONS, json=body, headers=headers)
        assert response.status_code == 201, response.text
        assert response.json()["execution_time_ms"] == 7

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("POST", ACTIONS, {"action_type": "x", "execution_time_ms": 3291.5}),
            ("POST", f"{ACTIONS}/batch", [{"action_type": "x", "execution_time_ms": 0.5}]),
            ("PATCH", f"{ACTIONS}/{{running}}", {"execution_time_ms": 3291.5}),
            ("POST", RULES, {**RULE, "window_minutes": 5.5}),
        ],
    )
    async def test_a_fraction_is_not_a_whole_number(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        method: str,
        path: str,
        body: Any,
    ) -> None:
        url = path.replace("{running}", await _running(client, tenant))
        response = await client.request(method, url, json=body, headers=tenant.headers)
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert error["msg"] == "must be a whole number"
        assert error["loc"][-1] in ("execution_time_ms", "window_minutes")

    async def test_booleans_and_strings_are_still_not_milliseconds(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        for value in (False, "12"):
            body = {"action_type": "x", "execution_time_ms": value}
            response = await client.post(ACTIONS, json=body, headers=tenant.headers)
            assert response.status_code == 422, response.text


def _served_methods(paths: dict[str, Any], path: str) -> set[str]:
    """The methods of the templates matching `path`, a literal segment winning (as routing)."""
    found: dict[int, set[str]] = {}
    for template, item in paths.items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            found.setdefault(template.count("{"), set()).update(m.upper() for m in item)
    return found[min(found)]


class TestMethodNotAllowed:
    @pytest.mark.parametrize(
        ("method", "path", "allow"),
        [
            ("PATCH", f"{ACTIONS}/export", "GET"),
            ("PATCH", f"{ACTIONS}/batch", "POST"),
            ("DELETE", f"{ACTIONS}/batch", "POST"),
            ("GET", f"{AUDITS}/batch", "POST"),
            ("POST", f"{AUDITS}/verify", "GET"),
        ],
    )
    async def test_a_word_a_parameter_would_take(
        self, client: httpx.AsyncClient, tenant: TenantHandle, method: str, path: str, allow: str
    ) -> None:
        headers = {**tenant.headers, **JSON}
        response = await client.request(method, path, content=b"{}", headers=headers)
        assert response.status_code == 405, response.text
        assert response.headers["allow"] == allow

    async def test_every_path_answers_405_for_every_method_it_lacks(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        headers = {**tenant.headers, **ADMIN, **JSON}
        checked = 0
        for template in paths:
            path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), template)
            served = _served_methods(paths, path)
            for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - served):
                response = await client.request(method, path, content=b"{}", headers=headers)
                assert response.status_code == 405, (method, path, response.text)
                assert set(response.headers["allow"].split(", ")) == served, (method, path)
                checked += 1
        assert checked > 100


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


class TestOneBodyReader:
    @pytest.mark.parametrize(
        ("path", "template"),
        [
            (ACTIONS, '{"action_type": "x", "metadata": {"k": %s}}'),
            (AUDITS, '{"action": "a", "resource_type": "r", "resource_id": "1", "metadata": %s}'),
            (TENANTS, '{"name": %s}'),
            (RULES, '{"name": %s}'),
        ],
    )
    async def test_every_route_says_the_same(
        self, client: httpx.AsyncClient, tenant: TenantHandle, path: str, template: str
    ) -> None:
        headers = {**tenant.headers, **ADMIN, **JSON}
        too_deep = await client.post(path, content=template % _deep(100_000), headers=headers)
        long_number = await client.post(path, content=template % ("9" * 5000), headers=headers)
        not_json = await client.post(path, content=template % "[1,", headers=headers)
        not_text = await client.post(path, content=b'{"name": "\xff"}', headers=headers)
        assert too_deep.status_code == 422, too_deep.text
        assert too_deep.json()["detail"] == [
            {"type": "json_too_deep", "loc": ["body"], "msg": "JSON nested deeper than 32 levels"}
        ]
        assert long_number.status_code == 422, long_number.text
        assert long_number.json()["detail"] == [
            {
                "type": "json_number_too_large",
                "loc": ["body"],
                "msg": "numbers must have at most 4300 digits",
            }
        ]
        assert not_json.status_code == 422, not_json.text
        (error,) = not_json.json()["detail"]
        assert error["type"] == "json_invalid" and error["loc"][0] == "body"
        assert isinstance(error["loc"][1], int) and "not valid JSON" in error["msg"]
        assert not_text.status_code == 422, not_text.text
        assert not_text.json()["detail"][0]["msg"] == "body is not valid JSON (UTF-8 text expected)"

    async def test_the_keyed_path_and_the_lane_say_the_same(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        content = '{"action_type": "x", "metadata": DEEP}'.replace("DEEP", _deep(100_000))
        keyed = {**tenant.headers, **JSON, "Idempotency-Key": uuid.uuid4().hex}
        lane = await client.post(ACTIONS, content=content, headers={**tenant.headers, **JSON})
        route = await client.post(ACTIONS, content=content, headers=keyed)
        assert lane.status_code == route.status_code == 422
        assert lane.json() == route.json()

    @pytest.mark.parametrize(
        "path", [ACTIONS, f"{ACTIONS}/batch", AUDITS, f"{AUDITS}/batch", TENANTS, RULES]
    )
    async def test_a_body_without_content_type_is_415(
        self, client: httpx.AsyncClient, tenant: TenantHandle, path: str
    ) -> None:
        headers = {**tenant.headers, **ADMIN}
        response = await client.post(path, content=b'{"action_type": "x"}', headers=headers)
        assert response.status_code == 415, response.text
        assert response.json() == {"detail": "Content-Type must be application/json"}

    async def test_a_request_without_a_body_needs_no_content_type(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        response = await client.get(ACTIONS, headers=tenant.headers)
        assert response.status_code == 200

    @pytest.mark.parametrize(
        ("path", "body", "field", "limit"),
        [
            (ACTIONS, {"action_type": "x" * 101}, "action_type", 100),
            (f"{ACTIONS}/batch", [{"action_type": "x", "service": "s" * 101}], "service", 100),
            (RULES, {**RULE, "name": "n" * 256}, "name", 255),
            (TENANTS, {"name": ""}, "name", 1),
        ],
    )
    async def test_text_lengths_are_counted_in_characters(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        path: str,
        body: Any,
        field: str,
        limit: int,
    ) -> None:
        response = await client.post(path, json=body, headers={**tenant.headers, **ADMIN})
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert error["loc"][-1] == field
        bound = "at least" if limit == 1 else "at most"
        unit = "character" if limit == 1 else "characters"
        assert error["msg"] == f"String should have {bound} {limit} {unit}"
        assert "items" not in response.text


class TestSecretsInProse:
    async def test_key_value_pairs_are_redacted_in_every_text_field(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = {
            "action_type": "login",
            "status": "in_progress",
            "error_message": "login failed for password=S3CR3T-VALUE (user=ann)",
            "user_agent": "batch-runner/2 api_key: k-123456",
            "steps": [{"step": "auth", "status": "failed", "details": {"note": "token=abc"}}],
        }
        created = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert created.status_code == 201, created.text
        action_id = created.json()["id"]
        step = {"step": "retry", "status": "ok", "details": {"log": 'sent {"secret": "s-1"}'}}
        stepped = await client.post(
            f"{ACTIONS}/{action_id}/steps", json=step, headers=tenant.headers
        )
        assert stepped.status_code in (200, 201), stepped.text
        failed = {
            "status": "failure",
            "error_message": "Authorization: Bearer abcdefgh12345 refused",
        }
        patched = await client.patch(f"{ACTIONS}/{action_id}", json=failed, headers=tenant.headers)
        assert patched.status_code == 200, patched.text
        stored = (await client.get(f"{ACTIONS}/{action_id}", headers=tenant.headers)).json()
        assert stored["error_message"] == "Authorization: [REDACTED] refused"
        assert stored["user_agent"] == "batch-runner/2 api_key: [REDACTED]"
        assert stored["steps"][0]["details"] == {"note": "token=[REDACTED]"}
        assert stored["steps"][1]["details"] == {"log": 'sent {"secret": "[REDACTED]"}'}
        assert "S3CR3T" not in created.text and "k-123456" not in created.text

    async def test_the_first_error_message_too(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = {"action_type": "x", "status": "failed", "error_message": "password=S3CR3T-VALUE"}
        response = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
        assert response.json()["error_message"] == "password=[REDACTED]"

    async def test_audit_events_and_their_user_agent(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = {
            "action": "update",
            "resource_type": "user",
            "resource_id": "7",
            "before": {"plan": "free"},
            "after": {"plan": "pro"},
            "user_agent": "sync/1.0 session_id=abcd1234",
            "metadata": {"comment": "rotated, old pwd: hunter2"},
        }
        response = await client.post(AUDITS, json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
        stored = (
            await client.get(f"{AUDITS}/{response.json()['id']}", headers=tenant.headers)
        ).json()
        assert stored["user_agent"] == "sync/1.0 session_id=[REDACTED]"
        assert stored["metadata"] == {"comment": "rotated, old pwd: [REDACTED]"}

    async def test_ordinary_pairs_are_kept(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        text = "retry at 12:30:05 status=503 tokens_used: 42 https://example.com/a?b=c"
        body = {"action_type": "x", "error_message": text}
        response = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert response.json()["error_message"] == text


class TestSmallerSurfaces:
    @pytest.mark.parametrize("path", ["/docs", "/redoc"])
    async def test_api_docs_have_a_content_security_policy(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        response = await client.get(path)
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "script-src 'self'" in policy and "'unsafe-eval'" not in policy
        for script in re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL):
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in policy

    async def test_a_null_threshold_is_named(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        rule = (await client.post(RULES, json=RULE, headers=tenant.headers)).json()
        url = f"{RULES}/{rule['id']}"
        response = await client.patch(url, json={"threshold": None}, headers=tenant.headers)
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", "threshold"]
        assert error["msg"].startswith("cannot be null")
        kept = await client.patch(url, json={"op": "<"}, headers=tenant.headers)
        assert kept.status_code == 200, kept.text
        assert kept.json()["threshold"] == 3

    async def test_the_schema_does_not_offer_null_for_required_rule_fields(
        self, client: httpx.AsyncClient
    ) -> None:
        schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
        fields = schema["RuleUpdate"]["properties"]
        for name in ("name", "metric", "op", "threshold", "window_minutes"):
            assert "anyOf" not in fields[name] and "default" not in fields[name], name

    async def test_another_tenants_rule_is_not_found(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        other = await create_tenant(client, "Other")
        rule = (await client.post(RULES, json=RULE, headers=tenant.headers)).json()
        response = await client.patch(
            f"{RULES}/{rule['id']}", json={"threshold": 9}, headers=other.headers
        )
        assert response.status_code == 404

    async def test_nulls_beside_a_preset_leave_the_presets_values(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = {"preset": "error_rate", "metric": None, "op": None, "threshold": None}
        response = await client.post(RULES, json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
        assert response.json()["metric"] == "error_rate"

    async def test_a_change_that_conflicts_with_the_rules_grouping_is_409(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        grouped = {**RULE, "group_by": "provider_name"}
        rule = (await client.post(RULES, json=grouped, headers=tenant.headers)).json()
        url = f"{RULES}/{rule['id']}"
        conflict = await client.patch(url, json={"metric": "audit_changes"}, headers=tenant.headers)
        invalid = await client.patch(
            url, json={"metric": "audit_changes", "group_by": "action_type"}, headers=tenant.headers
        )
        fine = await client.patch(
            url, json={"metric": "audit_changes", "group_by": None}, headers=tenant.headers
        )
        assert conflict.status_code == 409, conflict.text
        assert "group_by" in conflict.json()["detail"]
        assert invalid.status_code == 422, invalid.text
        assert fine.status_code == 200, fine.text

    async def test_a_null_cooldown_is_the_default_or_refused_never_a_500(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        created = await client.post(
            RULES, json={**RULE, "cooldown_minutes": None}, headers=tenant.headers
        )
        assert created.status_code == 201, created.text
        url = f"{RULES}/{created.json()['id']}"
        patched = await client.patch(url, json={"cooldown_minutes": None}, headers=tenant.headers)
        assert patched.status_code == 422, patched.text
        assert patched.json()["detail"][0]["loc"] == ["body", "cooldown_minutes"]
        flag = await client.patch(url, json={"enabled": 0}, headers=tenant.headers)
        assert flag.status_code == 422, flag.text


class TestRefusalsTheSchemaCannotState:
    """What the schema cannot say (the clock, the network, stored data) is a 422 naming the
    field; Schemathesis's positive-data check is off for exactly these operations."""

    async def test_a_key_that_expired_already(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = {"name": "old", "scopes": ["read"], "expires_at": "2000-01-01T00:00:00Z"}
        for path in ("/api/v1/keys", f"{TENANTS}/{tenant.id}/keys"):
            response = await client.post(path, json=body, headers={**tenant.headers, **ADMIN})
            assert response.status_code == 422, response.text
            assert response.json()["detail"][0]["msg"] == "expires_at must be in the future"

    async def test_a_webhook_url_that_is_not_http(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = {"url": "ftp://example.com/hook"}
        response = await client.post("/api/v1/alerts/webhooks", json=body, headers=tenant.headers)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "url"]

    async def test_a_rule_naming_unknown_webhooks(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = {**RULE, "webhook_ids": [str(uuid.uuid4())]}
        response = await client.post(RULES, json=body, headers=tenant.headers)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["type"] == "unknown_webhook"
