"""A resource as it was: GET /audits/resource/{type}/{id}/state?at=T, rebuilt from its trail."""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.audits.conftest import AUDITS, Record
from tests.conftest import TenantHandle

Headers = Callable[[list[str]], Awaitable[dict[str, str]]]


def state_url(resource_type: str, resource_id: str) -> str:
    return f"{AUDITS}/resource/{resource_type}/{resource_id}/state"


def moment(row: dict[str, Any], **shift: float) -> str:
    at = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")) + timedelta(**shift)
    return at.isoformat()


async def state(
    client: httpx.AsyncClient, tenant: TenantHandle, rid: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(state_url("deal", rid), params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def lifecycle(tenant: TenantHandle, record: Record, rid: str) -> list[dict[str, Any]]:
    """create, update, update, delete of one deal."""
    v1, v2, v3 = {"stage": "lead"}, {"stage": "won", "amount": 10}, {"stage": "won", "amount": 12}
    rows = [await record(tenant, action="create", resource_type="deal", resource_id=rid,
                         before=None, after=v1)]  # fmt: skip
    for before, after in ((v1, v2), (v2, v3)):
        rows.append(await record(tenant, resource_type="deal", resource_id=rid,
                                 before=before, after=after))  # fmt: skip
    rows.append(await record(tenant, action="delete", resource_type="deal", resource_id=rid,
                             before=v3, after=None))  # fmt: skip
    return rows


class TestResourceState:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(state_url("deal", "d-1"))).status_code == 401

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        headers = await scoped_headers(["write"])
        assert (await client.get(state_url("deal", "d-1"), headers=headers)).status_code == 403

    async def test_state_follows_the_trail(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        rows = await lifecycle(tenant, record, "d/1")
        before = await state(client, tenant, "d/1", at=moment(rows[0], seconds=-1))
        assert before["exists"] is False and before["state"] is None
        assert before["sequence"] is None and before["deleted"] is False
        states = ({"stage": "lead"}, {"stage": "won", "amount": 10}, {"stage": "won", "amount": 12})
        for row, expected in zip(rows[:3], states, strict=True):
            found = await state(client, tenant, "d/1", at=moment(row))
            assert found["exists"] is True
            assert found["state"] == expected
            assert found["sequence"] == row["sequence"]
            assert found["event_id"] == row["id"]
            assert found["as_of"] == row["created_at"]
        gone = await state(client, tenant, "d/1")  # default: now
        assert gone["deleted"] is True and gone["exists"] is False and gone["state"] is None
        assert gone["sequence"] == rows[3]["sequence"] and gone["event_action"] == "delete"
        assert gone["resource_id"] == "d/1"

    async def test_zone_less_time_is_utc(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        rows = await lifecycle(tenant, record, "d-utc")
        naive = moment(rows[1]).replace("+00:00", "")
        assert (await state(client, tenant, "d-utc", at=naive))["sequence"] == rows[1]["sequence"]

    async def test_unknown_or_foreign_resource_is_404(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle,
        record: Record,
    ) -> None:  # fmt: skip
        await lifecycle(other_tenant, record, "theirs")
        for rid in ("theirs", "never-seen"):
            response = await client.get(state_url("deal", rid), headers=tenant.headers)
            assert response.status_code == 404
            assert rid in response.json()["detail"]

    async def test_bad_time_is_422(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        await lifecycle(tenant, record, "d-bad")
        response = await client.get(
            state_url("deal", "d-bad"), params={"at": "the day before"}, headers=tenant.headers
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "at"]

    async def test_the_trail_route_still_serves_the_trail(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        rows = await lifecycle(tenant, record, "d-trail")
        response = await client.get(f"{AUDITS}/resource/deal/d-trail", headers=tenant.headers)
        assert [r["id"] for r in response.json()] == [r["id"] for r in rows]
