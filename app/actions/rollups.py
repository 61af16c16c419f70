"""Rollups: per-minute, hourly and daily aggregates of action logs that statistics read instead
of rows.

Every write keeps them exact in its own transaction: an insert adds its rows' counts, a change
of a running action subtracts its old contribution and adds the new one, a purge subtracts
what it deletes. Each rollup row holds, for one tenant, period (a minute, an hour or a day,
UTC) and combination of type, provider, service, source and status: the count, the number of
timed actions, the sum of their `execution_time_ms`, and a latency histogram. Days keep long
ranges cheap (30 days: 30 rows per combination); hours and then minutes serve the edges of
ranges, hourly and minute series, so that a range reads raw rows only for the seconds before
its first whole minute and after its last, however many rows a burst put in them.

User rollups keep, per tenant, period and `user_id`, the user's actions, failed actions and the
newest action (time, id, type), so the most active users of a range cost what its number of
users and periods costs, not its rows. The newest action only moves forwards: taking rows away
(a purge, which deletes the oldest first) leaves it on a row that remains, or on a rollup
whose count drops to 0, which is not read. They are kept per hour, per day and for all time
(period 0, starting at the Unix epoch: the most active users over all time read one row per
user, however many days they were active); a range that starts or ends inside an hour reads
that part's rows for its users.

Failure rollups keep, per tenant, period, combination, error_type and pattern (the message
with ids, e-mail addresses and numbers masked: `mask_message`), the count of failed actions,
the first and last time seen, the newest id and the greatest message (the sample shown for a
typed group). Like the newest action of a user, the times, id and sample only move forwards:
after a purge a group that keeps rows may still name a first time or sample that was purged.

The histogram has 71 buckets: one per millisecond below 10 ms, then ten per decade (10, 13,
16, 20, 25, 32, 40, 50, 63, 80, 100, …: each about 1.26 times the last) up to 10^7 ms, and one
above. Percentiles are read from it (see `percentile`), so they are the same whether a query is
served from rollups or from raw rows, and within a bucket's width (about 26%) of the exact
value; interpolation inside the bucket usually brings them much closer.

The module reads top-down: failure patterns, the histogram and its percentiles, the keys and
deltas of a write (`deltas`), then the upserts that `apply` sends. The GenAI usage of an action
is app/actions/genai.py; rebuilding every rollup from the rows is app/actions/rollup_rebuild.py.
"""

import hashlib
import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    func,
    literal_column,
    or_,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.actions import genai
from app.actions.models import (
    HISTOGRAM_BUCKETS,
    ROLLUP_DIMENSIONS,
    action_failure_rollups,
    action_genai_rollups,
    action_rollups,
    action_user_rollups,
)
from app.actions.statuses import FAILED
from app.core.db import insert_values, upsert_insert

_R10 = (1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0)  # the Renard series: 10 per decade
BOUNDS: tuple[int, ...] = (
    *range(1, 10),
    *(round(m * 10**d) for d in range(1, 7) for m in _R10),
    10**7,
)
HISTOGRAM_COLUMNS = tuple(f"h{i:02d}" for i in range(HISTOGRAM_BUCKETS))
assert len(BOUNDS) + 1 == HISTOGRAM_BUCKETS
COUNTERS = ("total", "timed", "time_sum", *HISTOGRAM_COLUMNS)
MINUTE, HOUR, DAY = 60, 3600, 86400
ALL_TIME = 0  # a user rollup's period that holds every row of the user (see the module's doc)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # its start
PERIODS = (MINUTE, HOUR, DAY)
USER_PERIODS = (HOUR, DAY, ALL_TIME)
KEY_COLUMNS = ("tenant_id", "period", "start", *ROLLUP_DIMENSIONS)
FAILURE_KEY_COLUMNS = (*KEY_COLUMNS, "error_type", "pattern_key")
FAILURE_VALUE_COLUMNS = ("pattern", "count", "first_seen", "last_seen", "example_id", "sample")

_MASKS = (
    (
        re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b", re.I),
        "<id>",
    ),
    (re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{12,}\b", re.I), "<id>"),
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "<email>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)


# Failure patterns


def mask_message(message: str) -> str:
    """The message with ids (UUIDs, long hex), e-mail addresses and numbers masked."""
    for pattern, replacement in _MASKS:
        message = pattern.sub(replacement, message)
    return message


def pattern_key(pattern: str) -> str:
    """The digest that stands for a failure pattern in the rollups' key."""
    return hashlib.blake2b(pattern.encode(), digest_size=16).hexdigest()


# The latency histogram and its percentiles


def latency_bucket(ms: int) -> int:
    """The histogram bucket of a duration."""
    return bisect_right(BOUNDS, ms)


def latency_bucket_sql(column: Any) -> ColumnElement[int]:
    """`latency_bucket` in SQL, for aggregates over raw rows (bounds written inline)."""
    whens = [
        (column < literal_column(str(bound), Integer), literal_column(str(i), Integer))
        for i, bound in enumerate(BOUNDS)
    ]
    return case(*whens, else_=literal_column(str(len(BOUNDS)), Integer))


def percentile(histogram: Sequence[int], p: int) -> int | None:
    """The p-th percentile of the durations counted in `histogram`, None when it is empty.

    Nearest rank over the histogram: the rank ceil(p% * n) falls in one bucket, and the value
    is interpolated linearly across that bucket's range ([10^7, ∞) reports 10^7). Buckets
    below 10 ms hold one value each, so small percentiles are exact.
    """
    n = sum(histogram)
    if n <= 0:
        return None
    rank = max(1, -(-p * n // 100))  # ceil(p% of n), in integers
    below = 0
    for index, count in enumerate(histogram):
        if count > 0 and below + count >= rank:
            low = 0 if index == 0 else BOUNDS[index - 1]
            if index == len(BOUNDS):
                return low
            # durations are whole milliseconds: spread the bucket's count over its integers
            return low + math.floor((BOUNDS[index] - low) * (rank - below - 0.5) / count)
        below += count
    return None


# What an action counts for: its rollup keys and the deltas of a write


def period_start(moment: datetime, period: int) -> datetime:
    """The start of the UTC minute, hour or day holding `moment`."""
    if period == DAY:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


@dataclass
class Delta:
    total: int = 0
    timed: int = 0
    time_sum: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BUCKETS)

    def add(self, ms: int | None, sign: int) -> None:
        self.total += sign
        if ms is not None:
            self.timed += sign
            self.time_sum += sign * ms
            self.histogram[latency_bucket(ms)] += sign


RollupKey = tuple[Any, ...]
CONTRIBUTING = (
    "id", "tenant_id", "created_at", *ROLLUP_DIMENSIONS, "execution_time_ms", "user_id",
    "error_type", "error_message", "metadata",
)  # fmt: skip
USER_KEY_COLUMNS = ("tenant_id", "period", "start", "user_id")
USER_VALUE_COLUMNS = ("total", "failed", "last_action_at", "last_action_id", "last_action_type")


def contribution(action: Any) -> dict[str, Any]:
    """What an action counts for in the rollups, taken before the action changes."""
    # `metadata_` on ORM objects (`metadata` is SQLAlchemy's own)
    return {name: getattr(action, _ATTRIBUTES.get(name, name)) for name in CONTRIBUTING}


_ATTRIBUTES = {"metadata": "metadata_"}


RollupContribution = dict[str, Any]


def rollup_keys(row: Mapping[str, Any]) -> list[RollupKey]:
    """The rollup rows (minute, hour, day) that an action's values count in (absent ones: '')."""
    dimensions = (
        row.get("action_type") or "",
        row.get("provider_name") or "",
        row.get("service") or "",
        row.get("source") or "",
        row["status"],
    )
    minute = period_start(row["created_at"], MINUTE)
    hour = minute.replace(minute=0)
    day = hour.replace(hour=0)
    tenant_id = row["tenant_id"]
    return [
        (tenant_id, MINUTE, minute, *dimensions),
        (tenant_id, HOUR, hour, *dimensions),
        (tenant_id, DAY, day, *dimensions),
    ]


@dataclass
class UserDelta:
    total: int = 0
    failed: int = 0
    last: tuple[datetime, Any, str] | None = None  # (created_at, id, action_type), only forwards

    def add(self, row: Mapping[str, Any], sign: int) -> None:
        self.total += sign
        if row["status"] in FAILED:
            self.failed += sign
        if sign > 0:
            newest = (row["created_at"], row["id"], row["action_type"])
            if self.last is None or newest[:2] > self.last[:2]:
                self.last = newest


UserKey = tuple[Any, ...]
FailureKey = tuple[Any, ...]


@dataclass
class FailureDelta:
    pattern: str
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    example_id: Any = None
    sample: str | None = None

    def add(
        self, count: int, first: datetime, last: datetime, example_id: Any, sample: str | None
    ) -> None:
        """Count `count` failures in (negative: taken away; times, id and sample stay)."""
        self.count += count
        if count <= 0:
            return
        if self.first_seen is None or first < self.first_seen:
            self.first_seen = first
        if self.last_seen is None or last > self.last_seen:
            self.last_seen = last
        if self.example_id is None or example_id > self.example_id:
            self.example_id = example_id
        if sample is not None and (self.sample is None or sample > self.sample):
            self.sample = sample


def failure_group(error_type: str | None, message: str | None) -> tuple[str, str]:
    """(error_type, pattern) of a failure as the failure rollups key it ('' for none)."""
    if error_type:
        return error_type, ""
    return "", "" if message is None else mask_message(message)


@dataclass
class Changes:
    """What a write changes in the rollups: per combination, per user, per failure group."""

    combinations: dict[RollupKey, Delta] = field(default_factory=dict)
    users: dict[UserKey, UserDelta] = field(default_factory=dict)
    failures: dict[FailureKey, FailureDelta] = field(default_factory=dict)
    models: dict[RollupKey, genai.UsageDelta] = field(default_factory=dict)  # GenAI calls

    def add_failures(
        self, keys: list[RollupKey], error_type: str, pattern: str, *values: Any
    ) -> None:
        digest = pattern_key(pattern)
        for key in keys:
            failure_key = (*key, error_type, digest)
            delta = self.failures.get(failure_key)
            if delta is None:
                delta = self.failures[failure_key] = FailureDelta(pattern)
            delta.add(*values)


def deltas(changes: Iterable[tuple[Mapping[str, Any], int]]) -> Changes:
    """Rollup changes for actions (their column values) added (+1) or taken away (-1)."""
    result = Changes()
    combinations, users = result.combinations, result.users
    for row, sign in changes:
        ms = row.get("execution_time_ms")
        keys = rollup_keys(row)
        for key in keys:
            delta = combinations.get(key)
            if delta is None:
                delta = combinations[key] = Delta()
            delta.add(ms, sign)
        user_id = row.get("user_id")
        if user_id is not None:
            hour, day = keys[1], keys[2]
            for user_key in (
                (*hour[:3], user_id),
                (*day[:3], user_id),
                (hour[0], ALL_TIME, EPOCH, user_id),
            ):  # USER_PERIODS; fmt: skip
                user_delta = users.get(user_key)
                if user_delta is None:
                    user_delta = users[user_key] = UserDelta()
                user_delta.add(row, sign)
        if (used := genai.usage(row.get("metadata"))) is not None:
            model, input_tokens, output_tokens = used
            for key in keys:
                usage = result.models.get((*key, model))
                if usage is None:
                    usage = result.models[(*key, model)] = genai.UsageDelta()
                usage.add(sign, input_tokens, output_tokens)
        if row["status"] in FAILED:
            message = row.get("error_message")
            error_type, pattern = failure_group(row.get("error_type"), message)
            moment = row["created_at"]
            result.add_failures(keys, error_type, pattern, sign, moment, moment, row["id"], message)
    return result


# Writing the deltas: one multi-row upsert per rollup table


def _insert_rows(dialect: str, table: Any, _columns: Sequence[str]) -> Any:
    """The INSERT of an upsert (`insert_values` gives it its rows: one multi-row VALUES on
    PostgreSQL, one execution per row on SQLite).

    A multi-row VALUES of one tenant's rows is one statement a distributed PostgreSQL routes to
    the tenant's shard, where an INSERT … SELECT from a set-returning function of all the rows
    would be run as a COPY, which row-level security refuses. The DO UPDATE that follows holds
    no parameter (Citus could not type one there): only the row's EXCLUDED values and constants.
    """
    return upsert_insert(dialect, table)


@cache
def upsert_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO UPDATE that adds its rows' counters (built once per dialect).

    A histogram count of NULL adds nothing and leaves NULL (0) where nothing was ever added.
    """
    statement = _insert_rows(dialect, action_rollups, (*KEY_COLUMNS, *COUNTERS))
    t, new = action_rollups.c, statement.excluded
    counts = {name: t[name] + new[name] for name in ("total", "timed", "time_sum")}
    histogram = {
        name: case(
            (new[name].is_(None), t[name]),
            else_=func.coalesce(t[name], literal_column("0")) + new[name],
        )
        for name in HISTOGRAM_COLUMNS
    }
    return statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS), set_={**counts, **histogram}
    )


def upsert_rows(changes: dict[RollupKey, Delta]) -> list[dict[str, Any]]:
    """The rows of an upsert, in key order.

    Concurrent transactions lock rollup rows in the same order, so they queue, never deadlock.
    """
    rows = []
    for key in sorted(changes, key=lambda k: (str(k[0]), *k[1:])):
        delta = changes[key]
        row = dict(zip(KEY_COLUMNS, key, strict=True))
        row.update(total=delta.total, timed=delta.timed, time_sum=delta.time_sum)
        row.update(
            (name, count or None)
            for name, count in zip(HISTOGRAM_COLUMNS, delta.histogram, strict=True)
        )
        rows.append(row)
    return rows


@cache
def user_upsert_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO UPDATE that adds counts and moves the newest action forwards."""
    columns = (*USER_KEY_COLUMNS, *USER_VALUE_COLUMNS)
    statement = _insert_rows(dialect, action_user_rollups, columns)
    t, new = action_user_rollups.c, statement.excluded
    newer = or_(
        t.last_action_at.is_(None),
        new.last_action_at > t.last_action_at,
        and_(new.last_action_at == t.last_action_at, new.last_action_id > t.last_action_id),
    )
    return statement.on_conflict_do_update(
        index_elements=list(USER_KEY_COLUMNS),
        set_={
            "total": t.total + new.total,
            "failed": t.failed + new.failed,
            **{
                name: case((newer, new[name]), else_=t[name])
                for name in ("last_action_at", "last_action_id", "last_action_type")
            },
        },
    )


def user_upsert_rows(changes: dict[UserKey, UserDelta]) -> list[dict[str, Any]]:
    """The rows of a user upsert, in key order (so concurrent writers queue, never deadlock)."""
    rows = []
    for key in sorted(changes, key=lambda k: (str(k[0]), *k[1:])):
        delta = changes[key]
        last_at, last_id, last_type = delta.last or (None, None, None)
        rows.append(
            {
                **dict(zip(USER_KEY_COLUMNS, key, strict=True)),
                "total": delta.total,
                "failed": delta.failed,
                "last_action_at": last_at,
                "last_action_id": last_id,
                "last_action_type": last_type,
            }
        )
    return rows


@cache
def failure_upsert_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO UPDATE that adds counts and widens times, newest id and sample."""
    statement = _insert_rows(
        dialect, action_failure_rollups, (*FAILURE_KEY_COLUMNS, *FAILURE_VALUE_COLUMNS)
    )
    t, new = action_failure_rollups.c, statement.excluded

    def moved(name: str, further: ColumnElement[bool]) -> Any:
        return case((or_(t[name].is_(None), further), new[name]), else_=t[name])

    return statement.on_conflict_do_update(
        index_elements=list(FAILURE_KEY_COLUMNS),
        set_={
            "count": t["count"] + new["count"],
            "first_seen": moved("first_seen", new.first_seen < t.first_seen),
            "last_seen": moved("last_seen", new.last_seen > t.last_seen),
            "example_id": moved("example_id", new.example_id > t.example_id),
            "sample": moved("sample", new.sample > t.sample),
        },
    )


def failure_upsert_rows(changes: dict[FailureKey, FailureDelta]) -> list[dict[str, Any]]:
    """The rows of a failure upsert, in key order (so concurrent writers never deadlock)."""
    rows = []
    for key in sorted(changes, key=lambda k: (str(k[0]), *k[1:])):
        delta = changes[key]
        rows.append(
            {
                **dict(zip(FAILURE_KEY_COLUMNS, key, strict=True)),
                "pattern": delta.pattern,
                "count": delta.count,
                "first_seen": delta.first_seen,
                "last_seen": delta.last_seen,
                "example_id": delta.example_id,
                "sample": delta.sample,
            }
        )
    return rows


@cache
def genai_upsert_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO UPDATE that adds GenAI calls and token sums."""
    statement = _insert_rows(
        dialect, action_genai_rollups, (*genai.KEY_COLUMNS, *genai.VALUE_COLUMNS)
    )
    t, new = action_genai_rollups.c, statement.excluded
    return statement.on_conflict_do_update(
        index_elements=list(genai.KEY_COLUMNS),
        set_={name: t[name] + new[name] for name in genai.VALUE_COLUMNS},
    )


async def apply(connection: AsyncConnection, changes: Changes) -> None:
    """Add `changes` to the rollups, in the connection's transaction: one multi-row upsert per
    rollup table (`insert_values`), its rows in key order."""
    dialect = connection.dialect.name
    combinations = {
        k: d for k, d in changes.combinations.items() if d.total or d.time_sum or any(d.histogram)
    }
    if combinations:
        statement = upsert_statement(dialect)
        columns = (*KEY_COLUMNS, *COUNTERS)
        rows = upsert_rows(combinations)
        await insert_values(connection, action_rollups, columns, rows, upsert=statement)
    users = {k: d for k, d in changes.users.items() if d.total or d.failed or d.last}
    if users:
        statement = user_upsert_statement(dialect)
        columns = (*USER_KEY_COLUMNS, *USER_VALUE_COLUMNS)
        rows = user_upsert_rows(users)
        await insert_values(connection, action_user_rollups, columns, rows, upsert=statement)
    failures = {k: d for k, d in changes.failures.items() if d.count or d.first_seen}
    if failures:
        statement = failure_upsert_statement(dialect)
        columns = (*FAILURE_KEY_COLUMNS, *FAILURE_VALUE_COLUMNS)
        rows = failure_upsert_rows(failures)
        await insert_values(connection, action_failure_rollups, columns, rows, upsert=statement)
    models = {k: d for k, d in changes.models.items() if d}
    if models:
        statement = genai_upsert_statement(dialect)
        columns = (*genai.KEY_COLUMNS, *genai.VALUE_COLUMNS)
        rows = genai.upsert_rows(models)
        await insert_values(connection, action_genai_rollups, columns, rows, upsert=statement)
