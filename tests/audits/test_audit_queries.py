"""Reading audit rows: the filtered listing, one row, and a resource's trail."""

from collections.abc import Awaitable, Callable
from uuid import uuid4

import httpx
import pytest

from tests.audits.conftest import AUDITS, FetchAll, Record
from tests.conftest import TenantHandle, first_error

Headers = Callable[[list[str]], Awaitable[dict[str, str]]]


def trail_url(resource_type: str, resource_id: str) -> str:
    return f"{AUDITS}/resource/{resource_type}/{resource_id}"


class TestListAudits:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(AUDITS)).status_code == 401

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        response = await client.get(AUDITS, headers=await scoped_headers(["write"]))
        assert response.status_code == 403

    async def test_newest_first_with_every_field(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        first = await record(tenant, resource_id="a")
        second = await record(tenant, resource_id="b")
        response = await client.get(
            AUDITS, params={"resource_type": "contact"}, headers=tenant.headers
        )
        assert response.status_code == 200
        rows = response.json()
        assert [r["id"] for r in rows] == [second["id"], first["id"]]
        assert set(rows[0]) >= {
            "id", "tenant_id", "action", "resource_type", "resource_id", "user_id", "changes",
            "ip_address", "created_at", "user_agent", "metadata", "sequence", "hash",
        }  # fmt: skip
        assert "x-next-cursor" not in response.headers

    async def test_filters(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        a = await record(tenant, action="create", resource_type="ticket", resource_id="t1")
        b = await record(tenant, action="update", resource_type="ticket", user_id="bob")
        c = await record(tenant, action="delete", resource_type="contact", resource_id="c9")
        cases = [
            ({"action": "create", "resource_type": "ticket"}, [a]),
            ({"resource_type": "ticket"}, [b, a]),
            ({"resource_id": "c9"}, [c]),
            ({"user_id": "bob"}, [b]),
            ({"action": "delete", "resource_type": "ticket"}, []),
            ({"since": b["created_at"], "resource_type": "ticket"}, [b]),
            ({"since": a["created_at"], "until": c["created_at"]}, [b, a]),
            ({"until": a["created_at"], "resource_type": "ticket"}, []),
        ]
        for params, expected in cases:
            response = await client.get(AUDITS, params=params, headers=tenant.headers)
            assert response.status_code == 200, response.text
            assert [r["id"] for r in response.json()] == [r["id"] for r in expected], params

    async def test_since_after_until_is_422(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        params = {"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"}
        response = await client.get(AUDITS, params=params, headers=tenant.headers)
        assert response.status_code == 422
        assert first_error(response) == "since: since must not be after until"

    async def test_pagination_to_the_end(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record, fetch_all: FetchAll
    ) -> None:
        made = [await record(tenant, resource_type="page", resource_id=str(i)) for i in range(7)]
        first = await client.get(
            AUDITS, params={"resource_type": "page", "limit": 3}, headers=tenant.headers
        )
        assert len(first.json()) == 3
        assert first.headers["x-next-cursor"] in first.headers["link"]
        assert 'rel="next"' in first.headers["link"]
        rows = await fetch_all(AUDITS, tenant.headers, resource_type="page", limit=3)
        assert [r["id"] for r in rows] == [r["id"] for r in reversed(made)]

    async def test_skip(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        made = [await record(tenant, resource_type="skip", resource_id=str(i)) for i in range(3)]
        params = {"resource_type": "skip", "skip": 1, "limit": 1}
        response = await client.get(AUDITS, params=params, headers=tenant.headers)
        assert [r["id"] for r in response.json()] == [made[1]["id"]]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"limit": 1001}, "limit"),
            ({"limit": 0}, "limit"),
            ({"skip": -1}, "skip"),
            ({"since": "12/01/2026"}, "since"),
            ({"action": "x" * 101}, "action"),
        ],
    )
    async def test_bad_parameters_are_422(
        self, client: httpx.AsyncClient, tenant: TenantHandle, params: dict[str, object], field: str
    ) -> None:
        response = await client.get(AUDITS, params=params, headers=tenant.headers)
        assert response.status_code == 422
        assert field in str(response.json()["detail"])

    async def test_malformed_cursor_is_400(
        self, client: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        response = await client.get(AUDITS, params={"cursor": "nope"}, headers=tenant.headers)
        assert response.status_code == 400
        assert "cursor" in response.json()["detail"]

    async def test_other_tenants_rows_are_absent(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle,
        record: Record, fetch_all: FetchAll,
    ) -> None:  # fmt: skip
        mine = await record(tenant, resource_id="shared-id")
        theirs = await record(other_tenant, resource_id="shared-id")
        rows = await fetch_all(AUDITS, tenant.headers, limit=1000)
        ids = {r["id"] for r in rows}
        assert mine["id"] in ids and theirs["id"] not in ids
        assert {r["tenant_id"] for r in rows} == {tenant.id}


class TestGetAudit:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(f"{AUDITS}/{uuid4()}")).status_code == 401

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        headers = await scoped_headers(["write"])
        assert (await client.get(f"{AUDITS}/{uuid4()}", headers=headers)).status_code == 403

    async def test_found(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        row = await record(tenant)
        response = await client.get(f"{AUDITS}/{row['id']}", headers=tenant.headers)
        assert response.status_code == 200
        assert response.json() == row

    async def test_unknown_and_other_tenants_are_404(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle,
        record: Record,
    ) -> None:  # fmt: skip
        theirs = await record(other_tenant)
        for audit_id in (theirs["id"], str(uuid4())):
            response = await client.get(f"{AUDITS}/{audit_id}", headers=tenant.headers)
            assert response.status_code == 404
            assert response.json()["detail"] == f"audit log {audit_id} not found"

    async def test_not_a_uuid_is_422(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        response = await client.get(f"{AUDITS}/not-a-uuid", headers=tenant.headers)
        assert response.status_code == 422
        assert "audit_id" in str(response.json()["detail"])

    async def test_no_route_changes_or_deletes_a_row(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        url = f"{AUDITS}/{(await record(tenant))['id']}"
        for method in ("PUT", "PATCH", "DELETE"):
            response = await client.request(method, url, json={}, headers=tenant.headers)
            assert response.status_code == 405


class TestResourceTrail:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(trail_url("contact", "1"))).status_code == 401

    async def test_missing_scope(self, client: httpx.AsyncClient, scoped_headers: Headers) -> None:
        headers = await scoped_headers(["write"])
        assert (await client.get(trail_url("contact", "1"), headers=headers)).status_code == 403

    async def test_oldest_first_in_chain_order(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        created = await record(tenant, action="create", resource_id="r1", before=None)
        await record(tenant, resource_id="other")
        updated = await record(tenant, resource_id="r1")
        deleted = await record(tenant, action="delete", resource_id="r1", after=None)
        response = await client.get(trail_url("contact", "r1"), headers=tenant.headers)
        assert response.status_code == 200
        rows = response.json()
        assert [r["id"] for r in rows] == [created["id"], updated["id"], deleted["id"]]
        assert [r["sequence"] for r in rows] == sorted(r["sequence"] for r in rows)

    async def test_pagination_to_the_end(
        self, tenant: TenantHandle, record: Record, fetch_all: FetchAll
    ) -> None:
        made = [await record(tenant, resource_id="paged", after={"n": i + 1}) for i in range(5)]
        rows = await fetch_all(trail_url("contact", "paged"), tenant.headers, limit=2)
        assert [r["id"] for r in rows] == [r["id"] for r in made]

    async def test_resource_ids_with_slashes(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        row = await record(tenant, resource_type="file", resource_id="exports/2024/a b.csv")
        response = await client.get(
            trail_url("file", "exports/2024/a%20b.csv"), headers=tenant.headers
        )
        assert [r["id"] for r in response.json()] == [row["id"]]

    async def test_empty_trail(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        response = await client.get(trail_url("contact", "never"), headers=tenant.headers)
        assert response.status_code == 200
        assert response.json() == []

    async def test_list_cursor_is_not_a_trail_cursor(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        for _ in range(2):
            await record(tenant)
        page = await client.get(AUDITS, params={"limit": 1}, headers=tenant.headers)
        cursor = page.headers["x-next-cursor"]
        response = await client.get(
            trail_url("contact", "c-1"), params={"cursor": cursor}, headers=tenant.headers
        )
        assert response.status_code == 400

    async def test_other_tenants_trail_is_absent(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle,
        record: Record,
    ) -> None:  # fmt: skip
        await record(other_tenant, resource_id="same")
        response = await client.get(trail_url("contact", "same"), headers=tenant.headers)
        assert response.json() == []
