"""Listing actions: summary fields, filters, order, keyset pagination, and recent failures."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.actions.filters import ActionFilter
from app.actions.repository import SUMMARY_COLUMNS, ActionRepository
from app.core.config import Settings
from app.core.tenancy import set_tenant
from tests.actions.conftest import ACTIONS, BATCH, RecordMany, list_all, move_in_time
from tests.conftest import TenantHandle

SUMMARY_FIELDS = {
    "id",
    "tenant_id",
    "action_type",
    "action_name",
    "provider_name",
    "service",
    "source",
    "status",
    "error_message",
    "error_type",
    "execution_time_ms",
    "user_id",
    "correlation_id",
    "parent_id",
    "started_at",
    "completed_at",
    "created_at",
}
PARENT = "01900000-0000-7000-8000-0000000000aa"


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["id"] for row in rows]


@pytest.fixture
async def rows(record_many: RecordMany, tenant: TenantHandle) -> list[dict[str, Any]]:
    """Six varied actions of one tenant, as listed (newest last in this list)."""
    items: list[dict[str, Any]] = [
        {
            "action_type": "crm_create",
            "provider_name": "hubspot",
            "service": "Crm",
            "source": "api",
            "user_id": "ann",
            "session_id": "s1",
            "execution_time_ms": 100,
            "action_name": "Create Contact",
        },
        {
            "action_type": "crm_update",
            "provider_name": "hubspot",
            "status": "failed",
            "error_message": "Rate limit 100% used",
            "execution_time_ms": 900,
            "user_id": "bob",
            "correlation_id": "inc_1",
        },
        {
            "action_type": "s3_export",
            "provider_name": "s3",
            "status": "timeout",
            "error_message": "no answer in 10 s",
            "execution_time_ms": 10000,
            "source": "ui_button",
            "parent_id": PARENT,
        },
        {
            "action_type": "job_execution",
            "status": "in_progress",
            "service": "Scheduler",
            "action_name": "Nightly_Job",
        },
        {"action_type": "crm_create", "provider_name": "zendesk", "execution_time_ms": 50},
        {"action_type": "email_send", "status": "warning", "user_id": "ann", "session_id": "s2"},
    ]
    created = []
    for item in items:  # one request each, so created_at follows the list order
        created.extend(await record_many(tenant, [item]))
    return created


class TestListActions:
    async def test_summary_fields_without_payloads_newest_first(
        self, client: httpx.AsyncClient, tenant: TenantHandle, rows: list[dict[str, Any]]
    ) -> None:
        listed = await list_all(client, tenant)
        assert ids(listed) == ids(rows)[::-1]
        assert set(listed[0]) == SUMMARY_FIELDS
        ascending = await list_all(client, tenant, order="asc")
        assert ids(ascending) == ids(rows)

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"action_type": "crm_create"}, [0, 4]),
            ({"action_type": ["crm_create", "s3_export"]}, [0, 2, 4]),
            ({"status": "failed"}, [1]),
            ({"status": ["failure", "timeout"]}, [1, 2]),
            ({"status": "COMPLETED"}, [0, 4]),
            ({"provider_name": ["s3", "zendesk"]}, [2, 4]),
            ({"provider_name": "hubspot", "status": "success"}, [0]),
            ({"service": "Scheduler"}, [3]),
            ({"source": "ui_button"}, [2]),
            ({"user_id": "ann"}, [0, 5]),
            ({"session_id": "s2"}, [5]),
            ({"correlation_id": "inc_1"}, [1]),
            ({"parent_id": PARENT}, [2]),
            ({"min_duration_ms": 100}, [0, 1, 2]),
            ({"max_duration_ms": 100}, [0, 4]),
            ({"min_duration_ms": 100, "max_duration_ms": 900}, [0, 1]),
            ({"q": "CONTACT"}, [0]),
            ({"q": "rate LIMIT"}, [1]),
            ({"q": "100%"}, [1]),
            ({"q": "%"}, [1]),
            ({"q": "_"}, [3]),
            ({"q": "no answer"}, [2]),
            ({"q": "absent"}, []),
        ],
    )
    async def test_filters(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        rows: list[dict[str, Any]],
        params: dict[str, Any],
        expected: list[int],
    ) -> None:
        listed = await list_all(client, tenant, **params)
        assert ids(listed) == [rows[i]["id"] for i in reversed(expected)]

    async def test_time_range_is_half_open(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        rows: list[dict[str, Any]],
        engine: AsyncEngine,
    ) -> None:
        base = datetime(2030, 1, 1, tzinfo=UTC)
        await move_in_time(
            engine, {row["id"]: base + timedelta(hours=i) for i, row in enumerate(rows)}
        )
        window = {"since": "2030-01-01T01:00:00Z", "until": "2030-01-01T03:00:00Z"}
        assert ids(await list_all(client, tenant, **window)) == [rows[2]["id"], rows[1]["id"]]
        naive = {"since": "2030-01-01T04:00:00"}
        assert ids(await list_all(client, tenant, **naive)) == [rows[5]["id"], rows[4]["id"]]

    async def test_skip_is_an_offset_for_compatibility(
        self, client: httpx.AsyncClient, tenant: TenantHandle, rows: list[dict[str, Any]]
    ) -> None:
        listed = await list_all(client, tenant, skip=2, limit=3)
        assert ids(listed) == ids(rows)[::-1][2:5]

    async def test_cursor_wins_over_skip(
        self, client: httpx.AsyncClient, tenant: TenantHandle, rows: list[dict[str, Any]]
    ) -> None:
        first = await client.get(ACTIONS, params={"limit": 2}, headers=tenant.headers)
        cursor = first.headers["x-next-cursor"]
        params = {"limit": 2, "cursor": cursor, "skip": 3}
        second = await client.get(ACTIONS, params=params, headers=tenant.headers)
        assert ids(second.json()) == ids(rows)[::-1][2:4]
        assert "skip" not in second.headers["link"]

    async def test_next_page_headers_absent_on_the_last_page(
        self, client: httpx.AsyncClient, tenant: TenantHandle, rows: list[dict[str, Any]]
    ) -> None:
        page = await client.get(
            ACTIONS, params={"limit": 4, "action_type": "crm_create"}, headers=tenant.headers
        )
        assert "x-next-cursor" not in page.headers
        assert "link" not in page.headers
        full = await client.get(ACTIONS, params={"limit": 6}, headers=tenant.headers)
        assert "x-next-cursor" not in full.headers


async def walk(
    client: httpx.AsyncClient, tenant: TenantHandle, limit: int, **params: Any
) -> list[dict[str, Any]]:
    """Every page, following the Link header to the end."""
    seen: list[dict[str, Any]] = []
    url: str | None = ACTIONS
    query: dict[str, Any] | None = {"limit": limit, **params}
    while url is not None:
        response = await client.get(url, params=query, headers=tenant.headers)
        assert response.status_code == 200, response.text
        seen.extend(response.json())
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else None
        query = None
    return seen


@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_walking_every_page_under_concurrent_inserts(
    client: httpx.AsyncClient, tenant: TenantHandle, order: str
) -> None:
    for start in range(0, 120, 40):
        items = [{"action_type": "walk", "user_id": f"u{start + i}"} for i in range(40)]
        assert (await client.post(BATCH, json=items, headers=tenant.headers)).status_code == 201
    before = {row["id"] for row in await list_all(client, tenant)}

    async def insert_more() -> None:
        for _ in range(10):
            await client.post(ACTIONS, json={"action_type": "walk"}, headers=tenant.headers)
            await asyncio.sleep(0)

    seen, _ = await asyncio.gather(walk(client, tenant, 7, order=order), insert_more())
    seen_ids = ids(seen)
    assert len(seen_ids) == len(set(seen_ids)), "a row was returned twice"
    assert before <= set(seen_ids), "a row that existed before the walk was skipped"
    keys = [(row["created_at"], row["id"]) for row in seen]
    assert keys == sorted(keys, reverse=order == "desc")


class TestRecentFailures:
    url = f"{ACTIONS}/failed/recent"

    async def test_failures_and_timeouts_of_the_window_newest_first(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        rows: list[dict[str, Any]],
        engine: AsyncEngine,
        record_many: RecordMany,
    ) -> None:
        old = await record_many(tenant, [{"action_type": "old", "status": "failed"}])
        await move_in_time(engine, {old[0]["id"]: datetime.now(UTC) - timedelta(minutes=90)})
        response = await client.get(self.url, headers=tenant.headers)
        assert response.status_code == 200
        assert ids(response.json()) == [rows[2]["id"], rows[1]["id"]]
        assert set(response.json()[0]) == SUMMARY_FIELDS
        wider = await client.get(self.url, params={"minutes": 120}, headers=tenant.headers)
        assert ids(wider.json()) == [rows[2]["id"], rows[1]["id"], old[0]["id"]]
        limited = await client.get(self.url, params={"limit": 1}, headers=tenant.headers)
        assert ids(limited.json()) == [rows[2]["id"]]

    async def test_failures_and_timeouts_interleaved_are_merged_newest_first(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        engine: AsyncEngine,
        record_many: RecordMany,
    ) -> None:
        """Each failed status is read on its own; the merge keeps the newest across both."""
        statuses = ["failure", "timeout", "success", "timeout", "timeout", "failure"] * 5
        stored = await record_many(tenant, [{"action_type": "j", "status": s} for s in statuses])
        now = datetime.now(UTC)
        # timeouts bunched as the newest, then failures, then a mix: a per-status limit
        # that was merged wrongly would show
        await move_in_time(
            engine,
            {row["id"]: now - timedelta(seconds=(i * 37) % 600) for i, row in enumerate(stored)},
        )
        expected = ids(await list_all(client, tenant, status=["failure", "timeout"]))
        for limit in (1, 4, 7, 100):
            found = await client.get(self.url, params={"limit": limit}, headers=tenant.headers)
            assert ids(found.json()) == expected[:limit]


class TestSlowestFirst:
    async def test_sorted_by_duration_with_keyset_pages(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record_many: RecordMany
    ) -> None:
        durations = [5, 900, 40, 900, 7, 3000, 12]
        await record_many(tenant, [{"action_type": "x", "execution_time_ms": d} for d in durations])
        await record_many(tenant, [{"action_type": "untimed", "status": "success"}])
        seen: list[int] = []
        params: dict[str, Any] = {"sort": "execution_time_ms", "limit": 3}
        while True:
            response = await client.get(ACTIONS, params=params, headers=tenant.headers)
            assert response.status_code == 200, response.text
            seen += [row["execution_time_ms"] for row in response.json()]
            if "X-Next-Cursor" not in response.headers:
                break
            params["cursor"] = response.headers["X-Next-Cursor"]
        assert seen == sorted(durations, reverse=True)
        ascending = await client.get(
            ACTIONS, params={"sort": "execution_time_ms", "order": "asc"}, headers=tenant.headers
        )
        assert [r["execution_time_ms"] for r in ascending.json()] == sorted(durations)

    async def test_a_cursor_of_the_other_order_is_400(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record_many: RecordMany
    ) -> None:
        await record_many(tenant, [{"action_type": "x", "execution_time_ms": d} for d in (1, 2)])
        page = await client.get(ACTIONS, params={"limit": 1}, headers=tenant.headers)
        params = {"sort": "execution_time_ms", "cursor": page.headers["X-Next-Cursor"]}
        response = await client.get(ACTIONS, params=params, headers=tenant.headers)
        assert response.status_code == 400
        bad = await client.get(ACTIONS, params={"sort": "size"}, headers=tenant.headers)
        assert bad.status_code == 422


class TestTextSearchIndexes:
    async def test_the_listing_of_a_term_can_read_the_trigram_indexes(
        self,
        backend: str,
        engine: AsyncEngine,
        tenant: TenantHandle,
        rows: list[dict[str, Any]],
    ) -> None:
        """The page query of `q=` tests the indexed expressions (lower(column), case-folded
        LIKE), so PostgreSQL can answer a term from the trigram indexes, also for the service's
        role under row-level security; which path it takes for a rare or a common term at
        scale is measured in bench/RESULTS.md."""
        if backend != "postgresql":
            pytest.skip("the trigram indexes are PostgreSQL's; SQLite scans")
        repository = ActionRepository(AsyncSession(engine), UUID(tenant.id))
        query = repository.page_query(
            select(*SUMMARY_COLUMNS), ActionFilter(q="Rate LIMIT 100%"), limit=101, order="desc"
        )
        compiled = query.compile(dialect=engine.dialect)
        values = tuple(compiled.params[name] for name in compiled.positiontup or [])
        async with engine.connect() as connection, connection.begin() as transaction:
            # Left with the trigram indexes alone (the drops are undone by the rollback) and
            # scans priced out, the planner takes them if and only if they fit the query.
            others = await connection.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'action_logs' "
                "AND indexname NOT LIKE '%\\_trgm'"
            )
            for (name,) in others.all():
                if name == "pk_action_logs":
                    await connection.exec_driver_sql(
                        f"ALTER TABLE action_logs DROP CONSTRAINT {name}"
                    )
                else:
                    await connection.exec_driver_sql(f"DROP INDEX {name}")
            await connection.exec_driver_sql(  # enough rows that the term must be looked up
                "INSERT INTO action_logs (id, tenant_id, action_type, action_name, status, "
                "request_payload, metadata, steps, created_at, updated_at) "
                "SELECT gen_random_uuid(), $1, 'crm_search', 'Search Contacts', 'success', "
                "'{}', '{}', '[]', now() - interval '1 day', now() - interval '1 day' "
                "FROM generate_series(1, 20000)",
                (UUID(tenant.id),),
            )
            for column in ("action_name", "error_message"):  # the new rows into the tree
                await connection.exec_driver_sql(
                    f"SELECT gin_clean_pending_list('ix_action_logs_tenant_{column}_trgm')"
                )
            await connection.exec_driver_sql("ANALYZE action_logs")
            await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            # As the service reads: held by the tenant policy, whose condition comes before
            # any condition that is not leakproof (migration 0014).
            await connection.exec_driver_sql(f'SET LOCAL ROLE "{Settings().database_role}"')
            await set_tenant(connection, UUID(tenant.id))
            plan = await connection.exec_driver_sql(f"EXPLAIN {compiled.string}", values)
            text = "\n".join(row[0] for row in plan)
            found = await connection.exec_driver_sql(compiled.string, values)
            assert [str(row.id) for row in found] == [rows[1]["id"]]
            await transaction.rollback()
        lookups = [line for line in text.splitlines() if "Index Cond" in line]
        for column in ("action_name", "error_message"):
            assert f"ix_action_logs_tenant_{column}_trgm" in text, text
            assert any(f"lower(({column})" in line or f"lower({column})" in line
                       for line in lookups), text  # fmt: skip
