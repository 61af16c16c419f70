"""Time filters take what people type: ISO 8601 date-times and dates, Unix seconds, relative
forms (-15m, -24h, -7d, now, today, yesterday); anything else is a 422 listing those forms."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.core.inputs import parse_time
from tests.actions.conftest import ACTIONS, STATS, Record
from tests.conftest import TenantHandle

AUDITS = "/api/v1/logs/audits"
NOW = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-15m", NOW - timedelta(minutes=15)),
        ("-24h", NOW - timedelta(hours=24)),
        ("-7d", NOW - timedelta(days=7)),
        ("now-2w", NOW - timedelta(weeks=2)),
        ("-30s", NOW - timedelta(seconds=30)),
        ("today", datetime(2026, 12, 6, tzinfo=UTC)),
        ("yesterday", datetime(2026, 12, 5, tzinfo=UTC)),
        ("1764581400", datetime(2025, 12, 1, 9, 30, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1)),
        ("2026-12-01T09:30:00Z", datetime(2026, 12, 1, 9, 30, tzinfo=UTC)),
        ("2026-12-01T10:30:00+01:00", datetime(2026, 12, 1, 9, 30, tzinfo=UTC)),
    ],
)
def test_forms(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW) == expected


class TestActionList:
    async def test_every_form_filters_the_list(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        stored = await record(tenant, action_type="time_filter")
        created = datetime.fromisoformat(stored["created_at"])
        day = f"{created - timedelta(days=1):%Y-%m-%d}"
        unix = str(int((created - timedelta(minutes=5)).timestamp()))
        for since in ("-15m", "-24h", "-7d", "today", "yesterday", day, unix):
            response = await client.get(ACTIONS, params={"since": since}, headers=tenant.headers)
            assert response.status_code == 200, (since, response.text)
            assert [row["id"] for row in response.json()] == [stored["id"]], since
        for until in ("-1h", day, "1000000000"):
            response = await client.get(ACTIONS, params={"until": until}, headers=tenant.headers)
            assert response.status_code == 200, (until, response.text)
            assert response.json() == [], until

    async def test_until_now_and_stats_take_the_same_forms(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        await record(tenant, action_type="time_filter")
        response = await client.get(
            STATS, params={"since": "-1h", "until": "now"}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["total_actions"] == 1

    @pytest.mark.parametrize("value", ["12/01/2026", "last tuesday", "-5x", "2026-13-01", "1e5"])
    async def test_unrecognised_time_lists_the_accepted_forms(
        self, client: httpx.AsyncClient, tenant: TenantHandle, value: str
    ) -> None:
        response = await client.get(ACTIONS, params={"since": value}, headers=tenant.headers)
        assert response.status_code == 422, response.text
        item = response.json()["detail"][0]
        assert item["loc"] == ["query", "since"]
        for form in ("ISO 8601", "2026-12-01T09:30:00Z", "2026-12-01", "Unix seconds", "-15m"):
            assert form in item["msg"], item["msg"]

    @pytest.mark.parametrize("value", ["999999999999", "-999999999w"])
    async def test_out_of_range_is_422(
        self, client: httpx.AsyncClient, tenant: TenantHandle, value: str
    ) -> None:
        response = await client.get(ACTIONS, params={"since": value}, headers=tenant.headers)
        assert response.status_code == 422, response.text
        assert "1900-01-01" in response.text

    async def test_bodies_stay_iso_8601(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        body = {"action_type": "a", "started_at": "-1h"}
        response = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "started_at"]


class TestAudits:
    async def test_list_and_state_take_relative_times(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
    ) -> None:
        body = {"action": "create", "resource_type": "deal", "resource_id": "t-1"}
        response = await client.post(AUDITS, json={**body, "after": {"stage": "lead"}},
                                     headers=tenant.headers)  # fmt: skip
        assert response.status_code == 201, response.text
        deals = {"resource_type": "deal"}
        listed = await client.get(AUDITS, params={**deals, "since": "-1h"}, headers=tenant.headers)
        assert [row["resource_id"] for row in listed.json()] == ["t-1"]
        earlier = await client.get(AUDITS, params={"until": "-1h"}, headers=tenant.headers)
        assert earlier.json() == []
        state = f"{AUDITS}/resource/deal/t-1/state"
        now = await client.get(state, params={"at": "now"}, headers=tenant.headers)
        assert now.json()["state"] == {"stage": "lead"}
        before = await client.get(state, params={"at": "-1d"}, headers=tenant.headers)
        assert before.json()["exists"] is False
        other = await client.get(state, params={"at": "now"}, headers=other_tenant.headers)
        assert other.status_code == 404
        bad = await client.get(state, params={"at": "soon"}, headers=tenant.headers)
        assert bad.status_code == 422 and "-24h" in bad.text

    async def test_other_tenant_sees_nothing_in_a_relative_range(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle,
        record: Record,
    ) -> None:  # fmt: skip
        await record(tenant, action_type="time_filter")
        response = await client.get(ACTIONS, params={"since": "-1h"}, headers=other_tenant.headers)
        assert response.status_code == 200 and response.json() == []
