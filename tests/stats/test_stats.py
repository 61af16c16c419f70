"""Statistics: every figure checked against values computed here from the rows inserted."""

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.actions.filters import ActionFilter
from app.actions.models import HISTOGRAM_BUCKETS
from app.actions.rollups import latency_bucket, mask_message, percentile
from app.stats.plan import USER_PERIODS, plan
from tests.actions.conftest import STATS, Record, RecordMany, move_in_time, parse_time
from tests.conftest import TenantHandle

TYPES = ["crm_create", "crm_update", "s3_export", "job_execution"]
STATUSES = ["success", "failure", "timeout", "warning", "in_progress", "success", "cancelled"]
PROVIDERS = [None, "hubspot", "s3", "zendesk", "hubspot"]
SOURCES = ["api", None, "ui_button"]
SERVICES = ["Crm", "Export", None, "Scheduler"]
FAILED = {"failure", "timeout"}


def dataset(n: int = 43) -> list[dict[str, Any]]:
    items = []
    for i in range(n):
        item: dict[str, Any] = {
            "action_type": TYPES[i % 4],
            "status": STATUSES[i % 7],
            "provider_name": PROVIDERS[i % 5],
            "source": SOURCES[i % 3],
            "service": SERVICES[(i // 2) % 4],
            "user_id": f"user{i % 6}",
        }
        if i % 5:
            item["execution_time_ms"] = (i * 37) % 101 + i // 10
        items.append(item)
    return items


def nearest_rank(values: list[int], p: int) -> int | None:
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered) / 100) - 1] if ordered else None


def histogram_percentile(values: list[int], p: int) -> int | None:
    """The service's definition: nearest rank over the latency histogram of the values."""
    histogram = [0] * HISTOGRAM_BUCKETS
    for value in values:
        histogram[latency_bucket(value)] += 1
    return percentile(histogram, p)


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def average(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def expected_stats(items: list[dict[str, Any]]) -> dict[str, Any]:
    timed = [i["execution_time_ms"] for i in items if "execution_time_ms" in i]

    def count(field: str) -> dict[str, int]:
        return dict(Counter(i[field] for i in items if i.get(field) is not None))

    def grouped(field: str) -> dict[str, dict[str, Any]]:
        groups = {}
        for name in {i[field] for i in items if i.get(field) is not None}:
            rows = [i for i in items if i.get(field) == name]
            successful = sum(i["status"] == "success" for i in rows)
            groups[name] = {
                "count": len(rows),
                "successful": successful,
                "failures": sum(i["status"] in FAILED for i in rows),
                "success_rate": rate(successful, len(rows)),
                "average_execution_time_ms": average(
                    [i["execution_time_ms"] for i in rows if "execution_time_ms" in i]
                ),
            }
        return groups

    successful = sum(i["status"] == "success" for i in items)
    return {
        "total_actions": len(items),
        "successful_actions": successful,
        "failed_actions": sum(i["status"] in FAILED for i in items),
        "average_execution_time_ms": average(timed),
        "actions_by_type": count("action_type"),
        "actions_by_provider": count("provider_name"),
        "success_rate": rate(successful, len(items)),
        "by_status": count("status"),
        "by_source": count("source"),
        "by_service": count("service"),
        "p50_execution_time_ms": histogram_percentile(timed, 50),
        "p95_execution_time_ms": histogram_percentile(timed, 95),
        "p99_execution_time_ms": histogram_percentile(timed, 99),
        "by_type": grouped("action_type"),
        "by_provider_stats": grouped("provider_name"),
        "by_service_stats": grouped("service"),
        "by_source_stats": grouped("source"),
        "genai": None,  # no action names a model (tests/otel/test_otel_genai.py)
    }


async def get(client: httpx.AsyncClient, tenant: TenantHandle, path: str, **params: Any) -> Any:
    response = await client.get(f"{STATS}{path}", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


class TestSummary:
    async def test_every_figure_matches_the_rows(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record_many: RecordMany
    ) -> None:
        items = dataset()
        await record_many(tenant, items)
        stats = await get(client, tenant, "")
        assert stats == expected_stats(items)
        counts = list(stats["actions_by_type"].values())
        assert counts == sorted(counts, reverse=True)

    async def test_filters_apply(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        record_many: RecordMany,
        engine: AsyncEngine,
    ) -> None:
        items = dataset()
        stored = await record_many(tenant, items)
        subset = [i for i in items if i["action_type"] in ("crm_create", "s3_export")]
        params = {"action_type": ["crm_create", "s3_export"]}
        assert await get(client, tenant, "", **params) == expected_stats(subset)
        failed = [i for i in items if i["status"] in FAILED and i.get("provider_name") == "hubspot"]
        params = {"status": ["failed", "timeout"], "provider_name": "hubspot"}
        assert await get(client, tenant, "", **params) == expected_stats(failed)
        base = datetime(2030, 1, 1, tzinfo=UTC)
        await move_in_time(
            engine, {row["id"]: base + timedelta(minutes=i) for i, row in enumerate(stored)}
        )
        window = {"since": "2030-01-01T00:10:00Z", "until": "2030-01-01T00:20:00Z"}
        assert await get(client, tenant, "", **window) == expected_stats(items[10:20])

    @pytest.mark.parametrize(
        "values",
        [
            list(range(1, 21)),
            list(range(1, 101)),
            [*range(100, 0, -1), 1000],
            [7],
            [3, 3, 3, 9],
            [0, 0, 1],
            [5000, 5100, 5200, 90_000_000],
        ],
    )
    async def test_percentiles_come_from_the_latency_histogram(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        record_many: RecordMany,
        values: list[int],
    ) -> None:
        await record_many(tenant, [{"action_type": "t", "execution_time_ms": v} for v in values])
        await record_many(tenant, [{"action_type": "untimed"}])
        stats = await get(client, tenant, "")
        got = [stats[f"p{p}_execution_time_ms"] for p in (50, 95, 99)]
        assert got == [histogram_percentile(values, p) for p in (50, 95, 99)]
        for p, value in zip((50, 95, 99), got, strict=True):
            exact = nearest_rank(values, p)
            assert exact is not None and value is not None
            if exact < 10:
                assert value == exact  # one bucket per millisecond below 10 ms
            elif exact < 10**7:
                assert abs(value - exact) <= 0.26 * exact, (p, value, exact)

    async def test_no_rows(self, client: httpx.AsyncClient, tenant: TenantHandle) -> None:
        assert await get(client, tenant, "") == expected_stats([])


class TestTimeseries:
    async def test_buckets_are_utc_and_empty_ones_are_zeros(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        record_many: RecordMany,
        engine: AsyncEngine,
    ) -> None:
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=8)
        offsets = [
            (timedelta(0), "success", 10),
            (timedelta(minutes=30), "failure", 20),
            (timedelta(hours=2, minutes=10), "timeout", None),
            (timedelta(hours=3) - timedelta(microseconds=1), "success", 40),
            (timedelta(hours=3), "success", 50),
            (timedelta(hours=5, seconds=1), "warning", 60),
        ]
        items = [{"action_type": "t", "status": s, "execution_time_ms": ms} for _, s, ms in offsets]
        stored = await record_many(tenant, items)
        await move_in_time(
            engine, {row["id"]: hour + offsets[i][0] for i, row in enumerate(stored)}
        )
        since, until = hour, hour + timedelta(hours=5)
        series = await get(
            client,
            tenant,
            "/timeseries",
            interval="hour",
            since=since.isoformat(),
            until=until.isoformat(),
        )
        assert [parse_time(b["start"]) for b in series["buckets"]] == [
            hour + timedelta(hours=h) for h in range(5)
        ]
        assert [
            (b["total"], b["successful"], b["failed"], b["average_execution_time_ms"])
            for b in series["buckets"]
        ] == [
            (2, 1, 1, 15.0),
            (0, 0, 0, None),
            (2, 1, 1, 40.0),
            (1, 1, 0, 50.0),
            (0, 0, 0, None),
        ]

        minutes = await get(
            client,
            tenant,
            "/timeseries",
            interval="minute",
            since=(hour + timedelta(minutes=29, seconds=30)).isoformat(),
            until=(hour + timedelta(minutes=32)).isoformat(),
        )
        assert [(parse_time(b["start"]) - hour, b["total"]) for b in minutes["buckets"]] == [
            (timedelta(minutes=29), 0),
            (timedelta(minutes=30), 1),
            (timedelta(minutes=31), 0),
        ]

        days = await get(
            client,
            tenant,
            "/timeseries",
            interval="day",
            since=(hour - timedelta(days=3)).isoformat(),
            until=(hour + timedelta(hours=6)).isoformat(),
        )
        starts = [parse_time(b["start"]) for b in days["buckets"]]
        assert all(s.hour == s.minute == 0 for s in starts)
        assert starts == [starts[0] + timedelta(days=d) for d in range(len(starts))]
        assert sum(b["total"] for b in days["buckets"]) == 6
        by_day = Counter((hour + offset).date() for offset, _, _ in offsets)
        assert {
            parse_time(b["start"]).date(): b["total"] for b in days["buckets"] if b["total"]
        } == by_day

    async def test_default_range_ends_now(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        await record(tenant, status="failure", execution_time_ms=4)
        series = await get(client, tenant, "/timeseries", interval="minute", status="failed")
        assert series["interval"] == "minute"
        assert 60 <= len(series["buckets"]) <= 61
        assert sum(b["total"] for b in series["buckets"]) == 1
        assert series["buckets"][-1]["failed"] == 1 or series["buckets"][-2]["failed"] == 1
        assert parse_time(series["until"]) - parse_time(series["since"]) == timedelta(hours=1)


class TestUserActivity:
    async def test_per_user_counts_failures_and_last_action(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        plan = [
            ("ann", "a1", "success"),
            ("bob", "b1", "failure"),
            ("ann", "a2", "timeout"),
            (None, "n1", "failure"),
            ("carol", "c1", "success"),
            ("bob", "b2", "success"),
            ("ann", "a3", "success"),
        ]
        created = [
            await record(tenant, user_id=user, action_type=kind, status=status)
            for user, kind, status in plan
        ]
        users = await get(client, tenant, "/users")
        assert [
            (u["user_id"], u["total_actions"], u["failed_actions"], u["last_action_type"])
            for u in users
        ] == [("ann", 3, 1, "a3"), ("bob", 2, 1, "b2"), ("carol", 1, 0, "c1")]
        assert users[0]["last_action_id"] == created[6]["id"]
        assert users[0]["last_action_at"] == created[6]["created_at"]
        top = await get(client, tenant, "/users", limit=1)
        assert [u["user_id"] for u in top] == ["ann"]
        only_failures = await get(client, tenant, "/users", status="failed")
        assert [(u["user_id"], u["last_action_type"]) for u in only_failures] == [("bob", "b1")]


def failure_groups(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """Stored failed rows by (action_type, error_type, masked message unless typed)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] not in FAILED:
            continue
        error_type, message = row["error_type"], row["error_message"]
        pattern = None if error_type or message is None else mask_message(message)
        groups.setdefault((row["action_type"], error_type, pattern), []).append(row)
    return groups


def expected_failures(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`stats/failures` computed here from stored rows."""

    def shown(key: tuple[Any, ...], rows: list[dict[str, Any]]) -> str | None:
        """The group's masked message; for a typed group, one of its messages as a sample."""
        if key[1] is None:
            return key[2]
        messages = [r["error_message"] for r in rows if r["error_message"] is not None]
        return mask_message(max(messages)) if messages else None

    expected = [
        {
            "action_type": key[0],
            "error_type": key[1],
            "pattern": shown(key, rows),
            "count": len(rows),
            "first_seen": min(r["created_at"] for r in rows),
            "last_seen": max(r["created_at"] for r in rows),
            "example_id": max(rows, key=lambda r: r["id"])["id"],
        }
        for key, rows in failure_groups(rows).items()
    ]
    expected.sort(key=lambda p: (-p["count"], -parse_time(p["last_seen"]).timestamp()))
    return expected


class TestFailurePatterns:
    async def test_grouped_by_type_and_error_or_masked_message(
        self, client: httpx.AsyncClient, tenant: TenantHandle, record: Record
    ) -> None:
        plan: list[tuple[str, str, str | None, str | None]] = [
            ("crm_create", "failure", "RateLimitError", "limit hit 1"),
            ("crm_create", "timeout", "RateLimitError", "limit hit 2"),
            ("crm_create", "failure", "ValidationError", "bad field"),
            ("s3_export", "failure", "RateLimitError", None),
            ("crm_create", "failure", "RateLimitError", "limit hit 3"),
            (
                "job",
                "failure",
                None,
                "Timeout after 1200 ms for order 5f3e2a1b-0000-4000-8000-000000000001",
            ),
            (
                "job",
                "timeout",
                None,
                "Timeout after 90.5 ms for order 0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000",
            ),
            ("job", "failure", None, "Disk full on ab12cd34ef56ab78"),
            ("job", "failure", None, None),
            ("job", "success", "RateLimitError", "not a failure"),
            ("job", "warning", None, "not a failure either"),
        ]
        created = [
            await record(tenant, action_type=t, status=s, error_type=e, error_message=m)
            for t, s, e, m in plan
        ]
        patterns = await get(client, tenant, "/failures")
        groups = failure_groups(created)
        assert patterns == expected_failures(created)
        assert patterns[0]["count"] == 3
        assert patterns[0]["pattern"] == "limit hit <n>"  # a sample, though it has an error_type
        assert ("job", None, "Timeout after <n> ms for order <id>") in groups
        assert ("job", None, "Disk full on <id>") in groups
        limited = await get(client, tenant, "/failures", limit=2, action_type="job")
        assert [p["pattern"] for p in limited] == ["Timeout after <n> ms for order <id>", None]


@pytest.mark.parametrize(
    ("message", "masked"),
    [
        ("HubSpot API rate limit exceeded (429)", "HubSpot API rate limit exceeded (<n>)"),
        ("contact 4812 invalid", "contact <n> invalid"),
        ("user bob@example.com missing", "user <email> missing"),
        ("job 01900000-0000-7000-8000-0000000000aa failed", "job <id> failed"),
        ("took 1.5 s", "took <n> s"),
        ("no numbers here", "no numbers here"),
    ],
)
def test_mask_message(message: str, masked: str) -> None:
    assert mask_message(message) == masked


def test_a_range_ending_now_reads_the_current_hour_from_rollups() -> None:
    """No raw rows at the end of a range that ends now: the current hour's rollup is exact."""
    now = datetime(2026, 12, 1, 22, 41, 7, tzinfo=UTC)
    since = datetime(2026, 11, 1, 22, 41, 7, tzinfo=UTC)
    parts = plan(ActionFilter(since=since, until=now), now=now)
    raw = [part for period, part in parts if period is None]
    # raw rows only for the seconds before the first whole minute
    assert [(part.since, part.until) for part in raw] == [
        (since, datetime(2026, 11, 1, 22, 42, tzinfo=UTC))
    ]
    assert max(part.until for _, part in parts if part.until) == datetime(
        2026, 12, 1, 23, tzinfo=UTC
    )
    # an end in the past, or beyond the current hour, keeps its raw edge: seconds, or for the
    # user rollups (hours and days) the minutes after the last whole hour
    earlier = now - timedelta(minutes=5, seconds=30)
    parts = plan(ActionFilter(since=since, until=earlier), now=now)
    assert (datetime(2026, 12, 1, 22, 35, tzinfo=UTC), earlier) in [
        (part.since, part.until) for period, part in parts if period is None
    ]
    parts = plan(ActionFilter(since=since, until=earlier), USER_PERIODS, now=now)
    assert (datetime(2026, 12, 1, 22, tzinfo=UTC), earlier) in [
        (part.since, part.until) for period, part in parts if period is None
    ]
