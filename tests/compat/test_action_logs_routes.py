"""The `/action-logs/*` routes answer in the in-process action log's shapes, for the key's
tenant only."""

import httpx

from tests.actions.conftest import ACTIONS, RecordMany
from tests.audits.conftest import AUDITS
from tests.conftest import TenantHandle

BASE = "/action-logs"


async def record_sample(record_many: RecordMany, tenant: TenantHandle) -> None:
    await record_many(
        tenant,
        [
            {"action_type": "createCase", "service": "CaseService", "execution_time_ms": 45},
            {
                "action_type": "send_message",
                "action_name": "sendMessage",
                "service": "ChatService",
                "status": "failed",
                "execution_time_ms": 250,
                "error_message": "OpenAI API rate limit exceeded",
            },
            {"action_type": "login", "service": "AuthenticationService", "status": "timeout"},
            {"action_type": "createCase", "service": "CaseService", "status": "in_progress"},
        ],
    )


async def test_recent_in_the_in_process_log_shape(
    client: httpx.AsyncClient, tenant: TenantHandle, record_many: RecordMany
) -> None:
    await record_sample(record_many, tenant)
    response = await client.get(f"{BASE}/recent", params={"limit": 3}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    actions = response.json()["actions"]
    assert len(actions) == 3
    for action in actions:
        assert set(action) == {"timestamp", "service", "action", "status", "duration", "error"}
        assert action["timestamp"].endswith("Z")
    everything = (await client.get(f"{BASE}/recent", headers=tenant.headers)).json()["actions"]
    chat = next(a for a in everything if a["service"] == "ChatService")
    assert chat == {
        "timestamp": chat["timestamp"],
        "service": "ChatService",
        "action": "sendMessage",
        "status": "failed",
        "duration": 250,
        "error": "OpenAI API rate limit exceeded",
    }
    assert [a["timestamp"] for a in everything] == sorted(
        (a["timestamp"] for a in everything), reverse=True
    )


async def test_failed_service_and_stats(
    client: httpx.AsyncClient, tenant: TenantHandle, record_many: RecordMany
) -> None:
    await record_sample(record_many, tenant)
    failed = (await client.get(f"{BASE}/failed", headers=tenant.headers)).json()["actions"]
    assert sorted(a["service"] for a in failed) == ["AuthenticationService", "ChatService"]
    assert all(a["status"] == "failed" for a in failed)
    cases = await client.get(f"{BASE}/service/CaseService", headers=tenant.headers)
    assert sorted(a["status"] for a in cases.json()["actions"]) == ["in_progress", "success"]
    stats = (await client.get(f"{BASE}/stats", headers=tenant.headers)).json()
    assert stats == {
        "stats": {
            "total": 4,
            "failed": 2,
            "byService": {"CaseService": 2, "AuthenticationService": 1, "ChatService": 1},
        }
    }


async def test_clear_purges_audits_and_keeps_stats_exact(
    client: httpx.AsyncClient, tenant: TenantHandle, record_many: RecordMany
) -> None:
    await record_sample(record_many, tenant)
    response = await client.post(f"{BASE}/clear", headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Action logs cleared successfully", "deleted": 4}
    assert (await client.get(ACTIONS, headers=tenant.headers)).json() == []
    stats = (await client.get(f"{BASE}/stats", headers=tenant.headers)).json()
    assert stats == {"stats": {"total": 0, "failed": 0, "byService": {}}}
    purges = await client.get(AUDITS, params={"action": "purge"}, headers=tenant.headers)
    assert [r["metadata"]["deleted"] for r in purges.json()] == [4]


async def test_scopes_and_bad_input(
    client: httpx.AsyncClient, tenant: TenantHandle, scoped_headers: object
) -> None:
    read_only = await scoped_headers(["read"])  # type: ignore[operator]
    assert (await client.post(f"{BASE}/clear", headers=read_only)).status_code == 403
    write_only = await scoped_headers(["write"])  # type: ignore[operator]
    assert (await client.get(f"{BASE}/recent", headers=write_only)).status_code == 403
    assert (await client.get(f"{BASE}/recent")).status_code == 401
    for params in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}):
        response = await client.get(f"{BASE}/recent", params=params, headers=tenant.headers)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "limit"]
    long = await client.get(f"{BASE}/service/{'s' * 101}", headers=tenant.headers)
    assert long.status_code == 422


async def test_another_tenant_sees_none_of_it(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    record_many: RecordMany,
) -> None:
    await record_sample(record_many, tenant)
    for path in ("recent", "failed", "service/CaseService"):
        response = await client.get(f"{BASE}/{path}", headers=other_tenant.headers)
        assert response.json() == {"actions": []}, path
    cleared = await client.post(f"{BASE}/clear", headers=other_tenant.headers)
    assert cleared.json()["deleted"] == 0
    assert len((await client.get(f"{BASE}/recent", headers=tenant.headers)).json()["actions"]) == 4
