"""Rollups and group commit: the fast paths give exactly what the raw rows give.

Statistics read minute, hourly and daily rollups (of actions, users and failures) kept in
step with every write; these tests compare them with
a rebuild from the rows and with aggregates computed here, after inserts, changes of running
actions and purges, with ragged time ranges, and under concurrent writers.
"""

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.actions import rollup_rebuild, rollups
from app.actions.filters import ActionFilter
from app.actions.models import (
    ActionLog,
    action_failure_rollups,
    action_rollups,
    action_user_rollups,
)
from app.actions.repository import insert_actions
from app.core.auth import Actor
from app.core.db import new_id, utcnow
from app.core.writer import GroupCommitWriter
from app.stats.plan import plan
from tests.actions.conftest import ACTIONS, STATS, RecordMany, list_all, move_in_time
from tests.conftest import TenantHandle
from tests.stats.test_stats import FAILED, expected_failures, expected_stats, get

TYPES = ["crm_create", "s3_export", "job_execution"]
STATUSES = ["success", "success", "failure", "timeout", "warning", "pending", "in_progress"]


def random_items(rng: random.Random, n: int) -> list[dict[str, Any]]:
    items = []
    for _ in range(n):
        item: dict[str, Any] = {
            "action_type": rng.choice(TYPES),
            "status": rng.choice(STATUSES),
            "provider_name": rng.choice([None, "hubspot", "s3"]),
            "service": rng.choice([None, "Crm", "Export"]),
            "source": rng.choice([None, "api", "scheduled_job"]),
            "user_id": rng.choice([None, "ann", "bob", "cy", "dee"]),
        }
        if item["status"] not in ("pending", "in_progress") and rng.random() < 0.8:
            item["execution_time_ms"] = int(rng.lognormvariate(5, 1.5))
        if item["status"] in FAILED:
            item["error_type"] = rng.choice([None, None, "RateLimitError", "ValidationError"])
            item["error_message"] = rng.choice(
                [None, f"rate limit hit after {rng.randrange(1, 99)} calls", "disk full",
                 f"order {uuid4()} refused"]
            )  # fmt: skip
        items.append(item)
    return items


async def rollup_rows(
    engine: AsyncEngine, tenant_id: str
) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """The tenant's rollups, without rows that count nothing."""
    c = action_rollups.c
    async with engine.connect() as connection:
        rows = (
            await connection.execute(select(action_rollups).where(c.tenant_id == UUID(tenant_id)))
        ).all()
    found = {}
    for row in rows:
        key, counters = (
            tuple(row[: len(rollups.KEY_COLUMNS)]),
            tuple(row[len(rollups.KEY_COLUMNS) :]),
        )
        if any(counters):
            found[key] = tuple(count or 0 for count in counters)  # NULL counts as 0
    return found


async def failure_rollup_rows(
    engine: AsyncEngine, tenant_id: str, *, counts_only: bool = False
) -> set[tuple[Any, ...]]:
    """The tenant's failure rollups that count something: key and count, or every column."""
    c = action_failure_rollups.c
    query = select(action_failure_rollups).where(c.tenant_id == UUID(tenant_id), c["count"] != 0)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    width = len(rollups.FAILURE_KEY_COLUMNS)
    return {(*row[:width], row.count) if counts_only else tuple(row) for row in rows}


async def user_rollup_rows(engine: AsyncEngine, tenant_id: str) -> set[tuple[Any, ...]]:
    """The tenant's user rollups that count something (a purge may leave zeros)."""
    c = action_user_rollups.c
    query = select(action_user_rollups).where(c.tenant_id == UUID(tenant_id), c.total != 0)
    async with engine.connect() as connection:
        return {tuple(row) for row in (await connection.execute(query)).all()}


async def assert_rollups_match_rebuild(
    engine: AsyncEngine, tenant_id: str, *, purged: bool = False
) -> None:
    """The rollups kept by writes are those a rebuild computes from the rows. After a purge,
    failure groups keep their first/last times, newest id and sample (they only move
    forwards), so only their counts are compared."""
    kept = await rollup_rows(engine, tenant_id)
    kept_users = await user_rollup_rows(engine, tenant_id)
    kept_failures = await failure_rollup_rows(engine, tenant_id, counts_only=purged)
    async with AsyncSession(engine) as session, session.begin():
        await rollup_rebuild.rebuild(session, UUID(tenant_id))
    assert kept == await rollup_rows(engine, tenant_id)
    assert kept, "the tenant has rollups"
    assert {key[1] for key in kept} == set(rollups.PERIODS)
    assert kept_users == await user_rollup_rows(engine, tenant_id)
    assert kept_users, "the tenant has user rollups"
    assert {key[1] for key in kept_users} == set(rollups.USER_PERIODS)  # all time included
    assert kept_failures == await failure_rollup_rows(engine, tenant_id, counts_only=purged)


class TestRollupsStayExact:
    async def test_after_inserts_changes_and_purges(
        self,
        app: Any,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        record_many: RecordMany,
        engine: AsyncEngine,
    ) -> None:
        rng = random.Random(11)
        old = await record_many(tenant, random_items(rng, 60))
        now = utcnow()
        await move_in_time(
            engine, {row["id"]: now - timedelta(days=3, minutes=7 * i) for i, row in enumerate(old)}
        )
        for item in random_items(rng, 20):
            response = await client.post(ACTIONS, json=item, headers=tenant.headers)
            assert response.status_code == 201
        await record_many(tenant, random_items(rng, 40))
        running = await list_all(client, tenant, status=["pending", "in_progress"])
        assert running
        for i, row in enumerate(running):
            change: dict[str, Any] = {"status": ["success", "failure", "timeout", "retry"][i % 4]}
            if i % 3 == 0:
                change["execution_time_ms"] = 10 * i + 1
            response = await client.patch(
                f"{ACTIONS}/{row['id']}", json=change, headers=tenant.headers
            )
            assert response.status_code == 200, response.text
        await assert_rollups_match_rebuild(engine, tenant.id)
        assert await failure_rollup_rows(engine, tenant.id), "the tenant has failure rollups"

        cutoff = now - timedelta(days=3, minutes=200)
        pruner = app.state.pruner  # the retention prune: archive, delete, rollups, audit
        purged = await pruner.prune(UUID(tenant.id), "actions", cutoff, Actor("test"))
        assert purged.deleted == sum(1 for i in range(60) if 7 * i > 200)
        await assert_rollups_match_rebuild(engine, tenant.id, purged=True)

        remaining = await list_all(client, tenant)
        stats = await get(client, tenant, "")
        assert stats["total_actions"] == len(remaining) == 120 - purged.deleted
        audits = await client.get(
            "/api/v1/logs/audits", params={"action": "purge"}, headers=tenant.headers
        )
        assert audits.json()[0]["metadata"]["deleted"] == purged.deleted


class TestStatsFromRollupsEqualRawAggregates:
    SPAN_MINUTES = 600

    @pytest.fixture
    async def spread(
        self, tenant: TenantHandle, record_many: RecordMany, engine: AsyncEngine
    ) -> tuple[list[dict[str, Any]], list[datetime]]:
        """120 actions spread over SPAN_MINUTES from a midnight days ago, at ragged times."""
        rng = random.Random(5)
        items = random_items(rng, 120)
        stored = await record_many(tenant, items)
        base = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
        times = [
            base + timedelta(minutes=rng.randrange(0, self.SPAN_MINUTES), seconds=rng.random())
            for _ in items
        ]
        await move_in_time(engine, {row["id"]: t for row, t in zip(stored, times, strict=True)})
        return items, times

    @pytest.mark.parametrize(
        ("start", "end"),
        [
            (None, None),
            (0, 600),  # whole hours
            (17, 433),  # ragged at both ends
            (60, 187),
            (75, 95),  # inside one hour
            (None, 301),
            (299, None),
        ],
    )
    async def test_summary(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        spread: tuple[list[dict[str, Any]], list[datetime]],
        start: int | None,
        end: int | None,
    ) -> None:
        items, times = spread
        base = min(times).replace(hour=0, minute=0, second=0, microsecond=0)
        since = base + timedelta(minutes=start) if start is not None else None
        until = base + timedelta(minutes=end) if end is not None else None
        chosen = [
            item
            for item, t in zip(items, times, strict=True)
            if (since is None or t >= since) and (until is None or t < until)
        ]
        params = {
            **({"since": since.isoformat()} if since else {}),
            **({"until": until.isoformat()} if until else {}),
        }
        assert await get(client, tenant, "", **params) == expected_stats(chosen)
        typed = {"action_type": ["crm_create"], "status": ["failure", "timeout"], **params}
        subset = [i for i in chosen if i["action_type"] == "crm_create" and i["status"] in FAILED]
        assert await get(client, tenant, "", **typed) == expected_stats(subset)

    @pytest.mark.parametrize("interval", ["minute", "hour", "day"])
    async def test_timeseries(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        spread: tuple[list[dict[str, Any]], list[datetime]],
        interval: str,
    ) -> None:
        items, times = spread
        since = min(times) + timedelta(minutes=13, seconds=17)
        until = max(times) - timedelta(minutes=29, seconds=41)
        width = {"minute": 60, "hour": 3600, "day": 86400}[interval]
        if interval == "minute":  # at most 1500 buckets
            until = min(until, since + timedelta(minutes=1400))
        total: Counter[int] = Counter()
        failed: Counter[int] = Counter()
        for item, t in zip(items, times, strict=True):
            if since <= t < until:
                total[int(t.timestamp() // width)] += 1
                failed[int(t.timestamp() // width)] += item["status"] in FAILED
        series = await get(
            client, tenant, "/timeseries", interval=interval,
            since=since.isoformat(), until=until.isoformat(),
        )  # fmt: skip
        for bucket in series["buckets"]:
            index = int(datetime.fromisoformat(bucket["start"]).timestamp() // width)
            assert (bucket["total"], bucket["failed"]) == (total[index], failed[index])
        assert sum(b["total"] for b in series["buckets"]) == sum(total.values())

    @pytest.mark.parametrize(
        ("start", "end"), [(None, None), (None, 20000), (17, 433), (75, 95), (299, None)]
    )
    async def test_users(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        spread: tuple[list[dict[str, Any]], list[datetime]],
        start: int | None,
        end: int | None,
    ) -> None:
        _, times = spread
        base = min(times).replace(hour=0, minute=0, second=0, microsecond=0)
        since = base + timedelta(minutes=start) if start is not None else None
        until = base + timedelta(minutes=end) if end is not None else None
        stored = {row["id"]: row for row in await list_all(client, tenant)}
        expected: dict[str, dict[str, Any]] = {}
        newest: dict[str, tuple[datetime, str]] = {}
        for row in stored.values():
            t = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
            user = row["user_id"]
            if user is None or (since and t < since) or (until and t >= until):
                continue
            tally = expected.setdefault(user, {"user_id": user, "total_actions": 0,
                                               "failed_actions": 0})  # fmt: skip
            tally["total_actions"] += 1
            tally["failed_actions"] += row["status"] in FAILED
            if user not in newest or (t, row["id"]) > newest[user]:
                newest[user] = (t, row["id"])
        for user, (_, action_id) in newest.items():
            expected[user].update(last_action_id=action_id,
                                  last_action_type=stored[action_id]["action_type"])  # fmt: skip
        params = {
            **({"since": since.isoformat()} if since else {}),
            **({"until": until.isoformat()} if until else {}),
        }
        found = await get(client, tenant, "/users", **params)
        ranked = sorted(expected.values(), key=lambda u: (-u["total_actions"], u["user_id"]))
        assert [{k: u[k] for k in ranked[0]} for u in found] == ranked if ranked else found == []
        for user in found:
            assert parse_ts(user["last_action_at"]) == newest[user["user_id"]][0]

    @pytest.mark.parametrize(("start", "end"), [(None, None), (17.5, 433.25), (0.5, 60)])
    async def test_failures(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        spread: tuple[list[dict[str, Any]], list[datetime]],
        start: float | None,
        end: float | None,
    ) -> None:
        """From minutes, hours and days of failure rollups and raw seconds at ragged ends;
        with a filter the rollups do not keep (a duration), from raw rows: the same groups."""
        _, times = spread
        base = min(times).replace(hour=0, minute=0, second=0, microsecond=0)
        since = base + timedelta(minutes=start) if start is not None else None
        until = base + timedelta(minutes=end) if end is not None else None
        params = {
            **({"since": since.isoformat()} if since else {}),
            **({"until": until.isoformat()} if until else {}),
        }
        stored = await list_all(client, tenant, **params)
        assert await get(client, tenant, "/failures", limit=1000, **params) == (
            expected_failures(stored)
        )
        timed = [row for row in stored if row["execution_time_ms"] is not None]
        raw = await get(client, tenant, "/failures", limit=1000, min_duration_ms=0, **params)
        assert raw == expected_failures(timed)
        if start is None:
            assert raw and len(raw) > 3, "the data set has several failure groups"

    async def test_each_kind_of_piece_is_read_in_one_statement(
        self,
        app: Any,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        spread: tuple[list[dict[str, Any]], list[datetime]],
    ) -> None:
        """A ragged range is cut into days, hours, minutes and raw seconds at both ends; each
        kind (rollups of each table, raw rows) is one statement, however many pieces."""
        items, times = spread
        base = min(times).replace(hour=0, minute=0, second=0, microsecond=0)
        since = base + timedelta(minutes=17, seconds=13.5)
        until = base + timedelta(minutes=self.SPAN_MINUTES - 29, seconds=41)
        f = ActionFilter(since=since, until=until, action_types=("crm_create",))
        pieces = plan(f)
        assert len([p for p, _ in pieces if p is not None]) >= 3, pieces  # hours, minutes
        assert len([p for p, _ in pieces if p is None]) == 2, pieces  # seconds at each end
        statements: list[str] = []

        def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            # (not the schema catalog's reload, which polls on the same engine on SQLite)
            if "FROM action_" in statement and "action_schema" not in statement:
                statements.append(statement)

        params = {"since": since.isoformat(), "until": until.isoformat(),
                  "action_type": "crm_create"}  # fmt: skip
        engine = app.state.read_engine  # the one statistics read through
        counted: dict[str, int] = {}
        for path, extra in [("", {}), ("/timeseries", {"interval": "hour"}),
                            ("/users", {}), ("/failures", {})]:  # fmt: skip
            statements.clear()
            event.listen(engine.sync_engine, "before_cursor_execute", note)
            try:
                await get(client, tenant, path, **params, **extra)
            finally:
                event.remove(engine.sync_engine, "before_cursor_execute", note)
            counted[path or "/"] = len(statements)
        # rollups and raw rows: counts, histogram and GenAI calls (stats), buckets (timeseries),
        # users and their last actions (users: type filters read raw rows), typed and untyped
        # (failures)
        assert counted == {"/": 6, "/timeseries": 2, "/users": 2, "/failures": 3}
        chosen = [i for i, t in zip(items, times, strict=True)
                  if since <= t < until and i["action_type"] == "crm_create"]  # fmt: skip
        assert await get(client, tenant, "", **params) == expected_stats(chosen)


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class TestStatsAcrossDays(TestStatsFromRollupsEqualRawAggregates):
    """The same checks over four days, so that whole days come from the daily rollups."""

    SPAN_MINUTES = 4 * 1440

    @pytest.mark.parametrize(
        ("start", "end"),
        [
            (None, None),
            (0, 4 * 1440),  # whole days
            (1440, 2880),  # exactly one day
            (17, 4433),  # ragged minutes across days
            (600, 3000),  # whole hours across days
            (None, 2000),
            (1441, None),
        ],
    )
    async def test_summary(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        spread: tuple[list[dict[str, Any]], list[datetime]],
        start: int | None,
        end: int | None,
    ) -> None:
        await super().test_summary(client, tenant, spread, start, end)


class TestGroupCommit:
    @pytest.fixture(autouse=True)
    def _postgresql_only(self, app: Any, backend: str) -> None:
        if not isinstance(app.state.writer, GroupCommitWriter):
            assert backend == "sqlite", "PostgreSQL writes go through the group-commit writer"
            pytest.skip("SQLite writes commit one request at a time")

    async def test_concurrent_posts_lose_and_duplicate_nothing(
        self, client: httpx.AsyncClient, tenant: TenantHandle, engine: AsyncEngine
    ) -> None:
        async def post(n: int) -> str:
            body = {"action_type": "bulk", "user_id": f"u{n}", "execution_time_ms": n}
            response = await client.post(ACTIONS, json=body, headers=tenant.headers)
            assert response.status_code == 201, response.text
            return str(response.json()["id"])

        async def client_loop(first: int) -> list[str]:
            return [await post(n) for n in range(first, first + 10)]

        ids = [
            i
            for chunk in await asyncio.gather(*(client_loop(k * 10) for k in range(30)))
            for i in chunk
        ]
        assert len(ids) == len(set(ids)) == 300
        async with engine.connect() as connection:
            stored = (
                await connection.execute(
                    select(ActionLog.id, ActionLog.user_id).where(
                        ActionLog.tenant_id == UUID(tenant.id)
                    )
                )
            ).all()
        assert sorted(str(r.id) for r in stored) == sorted(ids)
        assert sorted(r.user_id for r in stored) == sorted(f"u{n}" for n in range(300))
        stats = (await client.get(STATS, headers=tenant.headers)).json()
        assert stats["total_actions"] == 300
        assert stats["average_execution_time_ms"] == round(sum(range(300)) / 300, 2)
        await assert_rollups_match_rebuild(engine, tenant.id)

    async def test_a_refused_row_fails_only_its_own_write(
        self, app: Any, tenant: TenantHandle, engine: AsyncEngine
    ) -> None:
        def row() -> dict[str, Any]:
            now = utcnow()
            return {
                "id": new_id(), "action_type": "isolated",
                "status": "success", "request_payload": {}, "metadata": {}, "steps": [],
                "created_at": now, "updated_at": now,
            }  # fmt: skip

        good = [row() for _ in range(5)]
        orphan = row()  # written for no such tenant: the foreign key refuses it
        write = app.state.writer.write
        writes = [write(UUID(tenant.id), [r]) for r in good] + [write(uuid4(), [orphan])]
        results = await asyncio.gather(*writes, return_exceptions=True)
        assert results[:5] == [None] * 5
        assert isinstance(results[5], Exception)
        async with engine.connect() as connection:
            stored = (
                (
                    await connection.execute(
                        select(ActionLog.id).where(ActionLog.action_type == "isolated")
                    )
                )
                .scalars()
                .all()
            )
        assert sorted(stored) == sorted(r["id"] for r in good)


async def test_inserted_actions_commit_synchronously_whatever_the_session_default(
    backend: str, tenant: TenantHandle, engine: AsyncEngine
) -> None:
    if backend != "postgresql":
        pytest.skip("synchronous_commit is a PostgreSQL setting")
    now = utcnow()
    row = {
        "id": new_id(), "action_type": "durable",
        "status": "success", "request_payload": {}, "metadata": {}, "steps": [],
        "created_at": now, "updated_at": now,
    }  # fmt: skip
    async with engine.connect() as connection:
        await connection.exec_driver_sql("SET synchronous_commit TO off")  # begins
        await insert_actions(connection, [(UUID(tenant.id), [row])])
        setting = (await connection.exec_driver_sql("SHOW synchronous_commit")).scalar()
        await connection.rollback()  # undoes the SET and the row
    assert setting == "on"


def test_histogram_percentiles_are_exact_below_ten_ms() -> None:
    histogram = [0] * len(rollups.HISTOGRAM_COLUMNS)
    for value in [0, 1, 1, 2, 9, 9, 9]:
        histogram[rollups.latency_bucket(value)] += 1
    assert [rollups.percentile(histogram, p) for p in (1, 50, 99)] == [0, 2, 9]
    assert rollups.percentile([0] * len(histogram), 50) is None


def test_histogram_buckets_cover_every_duration() -> None:
    assert rollups.latency_bucket(0) == 0
    assert rollups.latency_bucket(2**31 - 1) == len(rollups.BOUNDS)
    edges = [rollups.latency_bucket(b) for b in rollups.BOUNDS]
    assert edges == list(range(1, len(rollups.BOUNDS) + 1))
    _ = datetime.now(UTC)
