"""Running actions: PATCH to progress, complete or fail them, and their execution steps."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.core.redact import REDACTED
from tests.actions.conftest import ACTIONS, Record, detail_text, parse_time
from tests.conftest import TenantHandle

FINAL = ["success", "failure", "timeout", "cancelled", "warning"]


async def patch(
    client: httpx.AsyncClient, tenant: TenantHandle, action: dict[str, Any], **body: Any
) -> httpx.Response:
    return await client.patch(f"{ACTIONS}/{action['id']}", json=body, headers=tenant.headers)


async def add_step(
    client: httpx.AsyncClient, tenant: TenantHandle, action: dict[str, Any], **body: Any
) -> httpx.Response:
    url = f"{ACTIONS}/{action['id']}/steps"
    return await client.post(url, json=body, headers=tenant.headers)


class TestUpdateAction:
    async def test_completing_stamps_the_end_and_the_duration(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        started = datetime.now(UTC) - timedelta(seconds=2)
        action = await record(tenant, status="initiated", started_at=started.isoformat())
        before = datetime.now(UTC)
        response = await patch(client, tenant, action, status="completed", response_data={"n": 1})
        assert response.status_code == 200, response.text
        done = response.json()
        assert done["status"] == "success"
        completed = parse_time(done["completed_at"])
        assert completed >= before
        assert done["execution_time_ms"] == round((completed - started).total_seconds() * 1000)
        assert done["response_data"] == {"n": 1}
        stored = await client.get(f"{ACTIONS}/{action['id']}", headers=tenant.headers)
        assert stored.json() == done

    async def test_given_end_and_duration_are_kept(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        action = await record(tenant, status="pending", started_at="2030-01-01T00:00:00Z")
        done = await patch(
            client, tenant, action, status="success", completed_at="2030-01-01T00:00:02Z"
        )
        assert done.json()["execution_time_ms"] == 2000
        other = await record(tenant, status="pending", started_at="2030-01-01T00:00:00Z")
        timed = await patch(client, tenant, other, status="success", execution_time_ms=12)
        assert timed.json()["execution_time_ms"] == 12

    async def test_a_start_from_a_skewed_clock_never_gives_a_negative_duration(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        future = "2999-01-01T00:00:00Z"
        action = await record(tenant, status="pending", started_at=future)
        done = (await patch(client, tenant, action, status="success")).json()
        assert (done["completed_at"], done["execution_time_ms"]) == (future, 0)

    async def test_progress_then_fail(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        action = await record(tenant, status="pending", metadata={"a": 1, "b": 1})
        moving = await patch(client, tenant, action, status="in_progress", metadata={"b": 2})
        assert moving.json()["status"] == "in_progress"
        assert moving.json()["completed_at"] is None
        assert moving.json()["metadata"] == {"a": 1, "b": 2}
        failed = await patch(
            client,
            tenant,
            action,
            status="failed",
            error_message="Connection refused",
            error_type="ConnectionError",
            metadata={"secret": "s", "c": 3},
        )
        body = failed.json()
        assert body["status"] == "failure"
        assert body["error_message"] == "Connection refused"
        assert body["error_type"] == "ConnectionError"
        assert body["metadata"] == {"a": 1, "b": 2, "secret": REDACTED, "c": 3}
        assert body["completed_at"] is not None

    async def test_payloads_are_redacted(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        action = await record(tenant, status="in_progress")
        response_data = {"items": [{"browser": {"cookie": "c", "ok": True}}]}
        done = await patch(client, tenant, action, status="success", response_data=response_data)
        assert done.json()["response_data"] == {
            "items": [{"browser": {"cookie": REDACTED, "ok": True}}]
        }

    @pytest.mark.parametrize("status", FINAL)
    async def test_a_final_action_cannot_change(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record, status: str
    ) -> None:
        action = await record(tenant, status=status)
        response = await patch(client, tenant, action, status="in_progress")
        assert response.status_code == 409
        assert status in detail_text(response)
        same = await patch(client, tenant, action, metadata={"late": True})
        assert same.status_code == 409
        stored = await client.get(f"{ACTIONS}/{action['id']}", headers=tenant.headers)
        assert stored.json() == action

    async def test_completing_twice_is_409(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        action = await record(tenant, status="pending")
        assert (await patch(client, tenant, action, status="success")).status_code == 200
        assert (await patch(client, tenant, action, status="failure")).status_code == 409

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"status": "half-done"}, "status"),
            ({"completed_at": "2029-12-31T23:59:59Z"}, "completed_at"),
            ({"execution_time_ms": -1}, "execution_time_ms"),
            ({"metadata": [1, 2]}, "metadata"),
            ({"error_type": "e" * 256}, "error_type"),
            ({"tenant_id": "x"}, "tenant_id"),
        ],
    )
    async def test_invalid_changes_are_422(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        record: Record,
        body: dict[str, Any],
        field: str,
    ) -> None:
        action = await record(tenant, status="pending", started_at="2030-01-01T00:00:00Z")
        response = await patch(client, tenant, action, **body)
        assert response.status_code == 422
        assert field in detail_text(response)


class TestAddStep:
    async def test_appends_steps_in_order(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        action = await record(tenant, status="initiated")
        before = datetime.now(UTC)
        first = await add_step(client, tenant, action, step="validation", status="in_progress")
        assert first.status_code == 201, first.text
        step = first.json()["steps"][0]
        assert (step["step"], step["status"], step["details"]) == ("validation", "in_progress", {})
        assert parse_time(step["timestamp"]) >= before
        second = await add_step(
            client,
            tenant,
            action,
            step="execution",
            status="started",
            details={"restarting": "db", "password": "p"},
            timestamp="2030-01-01T00:00:00Z",
        )
        steps = second.json()["steps"]
        assert [s["step"] for s in steps] == ["validation", "execution"]
        assert steps[1]["details"] == {"restarting": "db", "password": REDACTED}
        assert parse_time(steps[1]["timestamp"]) == datetime(2030, 1, 1, tzinfo=UTC)
        stored = await client.get(f"{ACTIONS}/{action['id']}", headers=tenant.headers)
        assert stored.json()["steps"] == steps

    async def test_concurrent_steps_are_all_kept(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        action = await record(tenant, status="in_progress")
        responses = await asyncio.gather(
            *(add_step(client, tenant, action, step=f"s{i}", status="ok") for i in range(10))
        )
        assert {r.status_code for r in responses} == {201}
        stored = await client.get(f"{ACTIONS}/{action['id']}", headers=tenant.headers)
        assert sorted(s["step"] for s in stored.json()["steps"]) == sorted(
            f"s{i}" for i in range(10)
        )

    async def test_a_final_action_takes_no_steps(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        action = await record(tenant, status="success")
        response = await add_step(client, tenant, action, step="late", status="ok")
        assert response.status_code == 409

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"status": "ok"}, "step"),
            ({"step": "s"}, "status"),
            ({"step": "s" * 256, "status": "ok"}, "step"),
            ({"step": "s", "status": "ok", "timestamp": "soon"}, "timestamp"),
            ({"step": "s", "status": "ok", "details": "text"}, "details"),
        ],
    )
    async def test_invalid_steps_are_422(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        record: Record,
        body: dict[str, Any],
        field: str,
    ) -> None:
        action = await record(tenant, status="pending")
        response = await add_step(client, tenant, action, **body)
        assert response.status_code == 422
        assert field in detail_text(response)

    async def test_deep_details_are_422(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        action = await record(tenant, status="pending")
        details: Any = "leaf"
        for _ in range(33):
            details = {"k": details}
        response = await add_step(client, tenant, action, step="s", status="ok", details=details)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "details"]
