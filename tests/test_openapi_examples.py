"""Every write body's OpenAPI example is what Swagger UI's "Try it out" sends, and it records a
sane row as it is; the service refuses the two mistakes a generated body used to make (an
action that is its own parent, a duration that contradicts its times), naming the fields."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import ADMIN, TenantHandle, create_tenant

ACTIONS = "/api/v1/logs/actions"


def body_example(operation: dict[str, Any]) -> Any:
    media = operation["requestBody"]["content"]["application/json"]
    if "example" in media:
        return media["example"]
    return next(iter(media["examples"].values()))["value"]


def write_operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]


async def test_every_write_body_has_an_example_that_records(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    spec = (await client.get("/openapi.json")).json()
    operations = write_operations(spec)
    assert len(operations) >= 15
    running = await client.post(
        ACTIONS, json={"action_type": "s3_export", "status": "in_progress"}, headers=tenant.headers
    )
    webhook = await client.post(
        "/api/v1/alerts/webhooks",
        json=body_example(spec["paths"]["/api/v1/alerts/webhooks"]["post"]),
        headers=tenant.headers,
    )
    assert webhook.status_code == 201, webhook.text
    rule = await client.post(
        "/api/v1/alerts/rules",
        json=body_example(spec["paths"]["/api/v1/alerts/rules"]["post"]),
        headers=tenant.headers,
    )
    assert rule.status_code == 201, rule.text
    destination = await client.post(
        "/api/v1/destinations",
        json=body_example(spec["paths"]["/api/v1/destinations"]["post"]),
        headers=tenant.headers,
    )
    assert destination.status_code == 201, destination.text
    scratch = await create_tenant(client, "Example scratch")
    values = {
        "{destination_id}": destination.json()["id"],
        "{action_type}": "example_schema_type",
        "{action_id}": running.json()["id"],
        "{endpoint_id}": webhook.json()["id"],
        "{rule_id}": rule.json()["id"],
        "{tenant_id}": scratch.id,
    }
    # steps before the PATCH that finishes the action
    for method, path, operation in sorted(operations, key=lambda op: op[0] == "patch"):
        url = path
        for name, value in values.items():
            url = url.replace(name, value)
        assert "{" not in url, url
        headers = ADMIN if "/admin/" in path else tenant.headers
        example = body_example(operation)
        response = await client.request(method, url, json=example, headers=headers)
        if path == "/api/v1/admin/tenants" and response.status_code == 409:
            assert "slug" in response.text  # the example's name, created by an earlier run
            continue
        assert response.status_code in (200, 201, 202), (method, path, response.text)


async def test_example_actions_read_as_real_records(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    spec = (await client.get("/openapi.json")).json()
    single = body_example(spec["paths"][ACTIONS]["post"])
    batch = body_example(spec["paths"][f"{ACTIONS}/batch"]["post"])
    assert "id" not in single and "parent_id" not in single
    assert all("id" not in item and "parent_id" not in item for item in batch)
    for body in (single, *batch):
        assert body.get("execution_time_ms", 0) < 60_000
        response = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
        stored = response.json()
        assert stored["parent_id"] != stored["id"]
        assert stored["execution_time_ms"] == body["execution_time_ms"]
    stats = (await client.get("/api/v1/logs/stats", headers=tenant.headers)).json()
    assert stats["average_execution_time_ms"] < 1000


class TestRefusals:
    async def test_own_parent_is_422_naming_parent_id(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        own = str(uuid.uuid4())
        body = {"id": own, "parent_id": own, "action_type": "crm_create"}
        response = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert response.status_code == 422, response.text
        item = response.json()["detail"][0]
        assert item["loc"] == ["body", "parent_id"]
        assert "own id" in item["msg"]
        batch = await client.post(
            f"{ACTIONS}/batch", json=[{"action_type": "a"}, body], headers=tenant.headers
        )
        assert batch.status_code == 422
        assert batch.json()["detail"][0]["loc"] == ["body", 1, "parent_id"]

    async def test_contradicting_duration_is_422_naming_the_fields(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        start = datetime.now(UTC) - timedelta(minutes=5)
        times = {
            "started_at": start.isoformat(),
            "completed_at": (start + timedelta(seconds=2)).isoformat(),
        }
        body = {"action_type": "crm_create", **times, "execution_time_ms": 2147483647}
        response = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert response.status_code == 422, response.text
        item = response.json()["detail"][0]
        assert item["loc"] == ["body", "completed_at"]
        for field in ("execution_time_ms", "started_at", "completed_at", "2000 ms"):
            assert field in item["msg"], item["msg"]

    async def test_duration_within_the_tolerance_is_kept(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        start = datetime.now(UTC) - timedelta(minutes=5)
        end = start + timedelta(seconds=10)
        times = {"started_at": start.isoformat(), "completed_at": end.isoformat()}
        for given in (10_000, 8_950, 12_000):  # within 1 s + 10 % of 10 s
            body = {"action_type": "crm_create", **times, "execution_time_ms": given}
            response = await client.post(ACTIONS, json=body, headers=tenant.headers)
            assert response.status_code == 201, response.text
            assert response.json()["execution_time_ms"] == given
        body = {"action_type": "crm_create", **times, "execution_time_ms": 12_001}
        response = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert response.status_code == 422

    async def test_patch_duration_must_agree_with_the_start(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        start = (datetime.now(UTC) - timedelta(seconds=3)).isoformat()
        body = {"action_type": "s3_export", "status": "in_progress", "started_at": start}
        created = await client.post(ACTIONS, json=body, headers=tenant.headers)
        url = f"{ACTIONS}/{created.json()['id']}"
        end = datetime.now(UTC).isoformat()
        change = {"status": "success", "completed_at": end, "execution_time_ms": 2147483647}
        other = await client.patch(url, json=change, headers=other_tenant.headers)
        assert other.status_code == 404
        response = await client.patch(url, json=change, headers=tenant.headers)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "execution_time_ms"]
        assert "contradicts" in response.text
        later = {"status": "success", "execution_time_ms": 181}  # the client's own stopwatch
        fine = await client.patch(url, json=later, headers=tenant.headers)
        assert fine.status_code == 200, fine.text


async def test_null_cooldown_takes_the_default_on_create(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    body = {"name": "n", "metric": "failure_count", "op": ">", "threshold": 1,
            "window_minutes": 5, "cooldown_minutes": None}  # fmt: skip
    created = await client.post("/api/v1/alerts/rules", json=body, headers=tenant.headers)
    assert created.status_code == 201, created.text
    assert created.json()["cooldown_minutes"] == 15
    url = f"/api/v1/alerts/rules/{created.json()['id']}"
    # on a change, null is refused: a rule always has a cooldown (leave it out to keep it)
    changed = await client.patch(url, json={"cooldown_minutes": None}, headers=tenant.headers)
    assert changed.status_code == 422, changed.text
    assert changed.json()["detail"][0]["loc"] == ["body", "cooldown_minutes"]
    strict = await client.post(
        "/api/v1/alerts/rules", json={**body, "cooldown_minutes": "15"}, headers=tenant.headers
    )
    assert strict.status_code == 422
