"""Recording actions: one or a batch, defaults, status aliases, redaction, and input limits."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.actions.models import ActionLog
from app.core.redact import REDACTED
from tests.actions.conftest import ACTIONS, BATCH, Record, detail_text, list_all, parse_time
from tests.conftest import TenantHandle

FULL = {
    "action_type": "crm_create",
    "action_name": "Create contact",
    "provider_name": "hubspot",
    "service": "CrmAdapter",
    "source": "api",
    "user_id": "alice@example.com",
    "session_id": "sess-1",
    "correlation_id": "inc_001",
    "parent_id": "01900000-0000-7000-8000-000000000001",
    "status": "success",
    "request_payload": {"email": "john@example.com"},
    "response_data": {"id": "12345"},
    "metadata": {"region": "eu-west-1"},
    "steps": [{"step": "validate", "status": "ok", "timestamp": "2030-01-01T00:00:00Z"}],
    "error_message": None,
    "error_type": None,
    "execution_time_ms": 245,
    "started_at": "2030-01-01T00:00:00Z",
    "completed_at": "2030-01-01T00:00:00.245000Z",
    "ip_address": "2001:db8::1",
    "user_agent": "hubspot-adapter/1.0",
}


def nested(depth: int) -> Any:
    """A JSON object nested `depth` levels deep."""
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


def column_length(name: str) -> int:
    return int(ActionLog.__table__.c[name].type.length)  # type: ignore[attr-defined]


class TestRecordAction:
    async def test_stores_every_field_and_answers_the_record(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        response = await client.post(ACTIONS, json=FULL, headers=tenant.headers)
        assert response.status_code == 201, response.text
        created = response.json()
        for field, value in FULL.items():
            if field not in ("steps", "started_at", "completed_at"):
                assert created[field] == value, field
        assert parse_time(created["started_at"]) == parse_time(FULL["started_at"])
        assert parse_time(created["completed_at"]) == parse_time(FULL["completed_at"])
        assert created["steps"][0]["step"] == "validate"
        assert created["tenant_id"] == tenant.id
        stored = await client.get(f"{ACTIONS}/{created['id']}", headers=tenant.headers)
        assert stored.json() == created

    async def test_defaults_of_a_one_shot_record(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        before = datetime.now(UTC)
        created = await record(tenant)
        assert created["status"] == "success"
        assert created["request_payload"] == {}
        assert created["metadata"] == {}
        assert created["steps"] == []
        assert created["response_data"] is None
        assert created["started_at"] is None
        assert created["execution_time_ms"] is None
        assert before <= parse_time(created["completed_at"]) == parse_time(created["created_at"])

    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            ("initiated", "pending"),
            ("completed", "success"),
            ("failed", "failure"),
            ("SUCCESS", "success"),
            ("in_progress", "in_progress"),
            ("timeout", "timeout"),
            ("retry", "retry"),
            ("warning", "warning"),
            ("cancelled", "cancelled"),
        ],
    )
    async def test_status_aliases_are_stored_canonically(
        self, tenant: TenantHandle, record: Record, given: str, stored: str
    ) -> None:
        assert (await record(tenant, status=given))["status"] == stored

    async def test_execution_time_computed_from_timestamps(
        self, tenant: TenantHandle, record: Record
    ) -> None:
        created = await record(
            tenant, started_at="2030-01-01T00:00:00Z", completed_at="2030-01-01T00:00:01.5Z"
        )
        assert created["execution_time_ms"] == 1500
        given = await record(
            tenant,
            started_at="2030-01-01T00:00:00Z",
            completed_at="2030-01-01T00:00:01Z",
            execution_time_ms=7,
        )
        assert given["execution_time_ms"] == 7

    async def test_running_action_starts_when_recorded(
        self, tenant: TenantHandle, record: Record
    ) -> None:
        created = await record(tenant, status="initiated")
        assert created["started_at"] == created["created_at"]
        assert created["completed_at"] is None

    async def test_naive_timestamps_are_utc(self, tenant: TenantHandle, record: Record) -> None:
        created = await record(tenant, started_at="2030-01-01T10:00:00", status="pending")
        assert parse_time(created["started_at"]) == datetime(2030, 1, 1, 10, tzinfo=UTC)

    async def test_secrets_are_redacted_at_any_depth(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        secret = {
            "Password": "hunter2",
            "deep": [{"x": {"accessToken": "t", "tokens_used": 3, "Set-Cookie": "c"}}],
            "nested": {"api_key": {"anything": "inside"}, "CVV": 123},
        }
        created = await record(
            tenant,
            request_payload=secret,
            response_data=[secret],
            metadata={"headers": {"Authorization": "Bearer x"}},
            steps=[{"step": "s", "status": "ok", "details": secret}],
        )
        expected = {
            "Password": REDACTED,
            "deep": [{"x": {"accessToken": REDACTED, "tokens_used": 3, "Set-Cookie": REDACTED}}],
            "nested": {"api_key": REDACTED, "CVV": REDACTED},
        }
        stored = (await client.get(f"{ACTIONS}/{created['id']}", headers=tenant.headers)).json()
        for body in (created, stored):
            assert body["request_payload"] == expected
            assert body["response_data"] == [expected]
            assert body["metadata"] == {"headers": {"Authorization": REDACTED}}
            assert body["steps"][0]["details"] == expected
        assert "hunter2" not in str(stored)

    async def test_tenant_id_in_the_body_is_refused(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        body = {"action_type": "x", "tenant_id": other_tenant.id}
        response = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert response.status_code == 422
        assert "tenant_id" in detail_text(response)

    @pytest.mark.parametrize(
        "field",
        [
            "action_type",
            "action_name",
            "provider_name",
            "service",
            "source",
            "user_id",
            "session_id",
            "correlation_id",
            "error_type",
            "ip_address",
            "user_agent",
        ],
    )
    async def test_strings_longer_than_their_column_are_refused(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record, field: str
    ) -> None:
        length = column_length(field)
        fitting = await record(tenant, **{field: "x" * length})
        assert fitting[field] == "x" * length
        body = {"action_type": "x", field: "x" * (length + 1)}
        response = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert response.status_code == 422
        error = response.json()["detail"][0]
        assert error["loc"] == ["body", field]
        assert str(length) in error["msg"]

    @pytest.mark.parametrize("field", ["request_payload", "response_data", "metadata"])
    async def test_json_deeper_than_the_limit_is_refused(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record, field: str
    ) -> None:
        await record(tenant, **{field: nested(32)})
        body = {"action_type": "x", field: nested(33)}
        response = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert response.status_code == 422
        assert response.json()["detail"] == [
            {
                "type": "json_too_deep",
                "loc": ["body", field],
                "msg": "JSON nested deeper than 32 levels",
            }
        ]

    async def test_deep_step_details_are_refused(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        steps = [
            {"step": "a", "status": "ok"},
            {"step": "b", "status": "ok", "details": nested(33)},
        ]
        body = {"action_type": "x", "steps": steps}
        response = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "steps", 1, "details"]

    async def test_json_too_deep_to_parse_is_refused(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        content = '{"action_type": "x", "metadata": ' + '{"k": ' * 5000 + "1" + "}" * 5001
        headers = {**tenant.headers, "Content-Type": "application/json"}
        response = await client.post(ACTIONS, content=content, headers=headers)
        assert response.status_code == 422
        assert response.json()["detail"][0]["msg"] == "JSON nested deeper than 32 levels"

    async def test_body_over_the_limit_is_413(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = {"action_type": "x", "request_payload": {"blob": "x" * (1024 * 1024)}}
        response = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert response.status_code == 413
        assert "exceeds the limit" in detail_text(response)
        assert await list_all(client, tenant) == []


class TestRecordBatch:
    async def test_stores_every_item_in_order(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        items = [
            {"action_type": f"t{i}", "status": "failed" if i % 2 else "completed"} for i in range(5)
        ]
        response = await client.post(BATCH, json=items, headers=tenant.headers)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["created"] == 5
        for item, action_id in zip(items, body["ids"], strict=True):
            got = (await client.get(f"{ACTIONS}/{action_id}", headers=tenant.headers)).json()
            assert got["action_type"] == item["action_type"]
            assert got["status"] == ("failure" if item["status"] == "failed" else "success")

    async def test_one_invalid_item_rejects_the_batch(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        items: list[dict[str, Any]] = [{"action_type": "ok"} for _ in range(5)]
        items[1]["status"] = "exploded"
        items[3]["user_agent"] = "x" * 1025
        response = await client.post(BATCH, json=items, headers=tenant.headers)
        assert response.status_code == 422
        locs = [error["loc"] for error in response.json()["detail"]]
        assert ["body", 1, "status"] in locs
        assert ["body", 3, "user_agent"] in locs
        assert "exploded" in detail_text(response)
        assert await list_all(client, tenant) == []

    async def test_too_deep_item_rejects_the_batch(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        items = [
            {"action_type": "ok"},
            {"action_type": "ok"},
            {"action_type": "x", "metadata": nested(40)},
        ]
        response = await client.post(BATCH, json=items, headers=tenant.headers)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", 2, "metadata"]
        assert await list_all(client, tenant) == []

    @pytest.mark.parametrize(("size", "status_code"), [(0, 422), (1000, 201), (1001, 422)])
    async def test_between_one_and_a_thousand_items(
        self, client: httpx.AsyncClient, tenant: TenantHandle, size: int, status_code: int
    ) -> None:
        items = [{"action_type": "bulk"}] * size
        response = await client.post(BATCH, json=items, headers=tenant.headers)
        assert response.status_code == status_code, response.text
        if status_code == 422:
            assert "1000" in detail_text(response) or "at least 1" in detail_text(response)

    async def test_a_batch_may_exceed_the_single_limit_but_not_its_own(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        blob = "x" * (300 * 1024)
        items = [{"action_type": "big", "request_payload": {"blob": blob}} for _ in range(5)]
        accepted = await client.post(BATCH, json=items, headers=tenant.headers)
        assert accepted.status_code == 201
        huge = [{"action_type": "big", "request_payload": {"blob": blob}} for _ in range(40)]
        refused = await client.post(BATCH, json=huge, headers=tenant.headers)
        assert refused.status_code == 413
        assert str(10 * 1024 * 1024) in detail_text(refused)
        assert len(await list_all(client, tenant)) == 5

    async def test_rows_share_the_recording_time(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        before = datetime.now(UTC) - timedelta(seconds=1)
        response = await client.post(BATCH, json=[{"action_type": "a"}] * 3, headers=tenant.headers)
        rows = await list_all(client, tenant)
        assert {row["created_at"] for row in rows} == {rows[0]["created_at"]}
        assert parse_time(rows[0]["created_at"]) > before
        assert [row["id"] for row in rows] == sorted(response.json()["ids"], reverse=True)
