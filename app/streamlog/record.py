"""Writing the stream: each writing transaction numbers its events and announces them.

Records keep their number on their own row: the paths that record actions and audit events
take numbers with `number` and insert their rows with them (the row is the event;
app/streams/events.py reads it from there), and a change of an action first `keep`s the
version the stream has seen as an event of its own, under its number, then takes a new number
for the row, so the stream still shows each version as it was. What is not a record's row (a
signed tree head of the audit log) goes in with `record` (or `record_many`), inside the
transaction, as its last statement: it advances the tenant's counter and inserts the events
with their numbers. Either way the tenant's counter (`stream_heads.seq`) is advanced by an
upsert that locks its row until the transaction ends, and each statement holds an equality on
the tenant, so a distributed PostgreSQL routes it to the tenant's shard.

Then the tenants touched are announced:

- on PostgreSQL with `pg_notify`, one per transaction, whose payload names every tenant of a
  group commit. Sent inside the transaction, it goes out when, and only when, the transaction
  commits. The group-commit writers send it right after their commit instead (`announce`):
  PostgreSQL serialises the commits of all notifying transactions on one lock held through
  the commit's WAL flush, and the writers of two workers must be able to flush at once. A
  notification lost between that commit and the send (the process died) delays the events
  by one poll of the readers (STREAM_POLL_SECONDS), never loses them;
- on SQLite by marking the connection; the hub of this process reads after the commit
  (see app/streams/hub.py).

Why the counter row: an id taken before commit (a sequence, a timestamp, a UUIDv7) can become
visible after a higher one, and a reader that moved past the higher one would skip it. With
the row lock, a tenant's second transaction cannot take its numbers before the first one has
committed or rolled back, so numbers become visible in order and without holes.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any, cast
from uuid import UUID

import orjson
from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db import insert_values, upsert_insert, utcnow
from app.core.tenancy import set_tenant
from app.streamlog.models import StreamEvent, StreamHead

CHANNEL = "actionlog_stream"
SQLITE_POKES = "stream_pokes"  # connection.info key: tenants to read after the commit
FILTER_FIELDS = (
    "action_type",
    "status",
    "provider_name",
    "service",
    "user_id",
    "session_id",
    "correlation_id",
)
KINDS = ("action", "audit", "tree_head")  # tree_head: a signed head of the audit log, kept
HEADS = cast(Table, StreamHead.__table__)
EVENTS = cast(Table, StreamEvent.__table__)
EVENT_COLUMNS = ("tenant_id", "seq", "created_at", "kind", "record_id", *FILTER_FIELDS, "payload")


def as_json(value: Any) -> str:
    """JSON text as the list routes write it (orjson, UTC times with Z)."""
    return orjson.dumps(value, default=str, option=orjson.OPT_UTC_Z).decode()


def entry(kind: str, record_id: UUID, payload: str, **fields: Any) -> dict[str, Any]:
    """One event: its kind, the record's id, the record as JSON text, and its filter fields."""
    event = {name: fields.get(name) for name in FILTER_FIELDS}
    event.update(kind=kind, record_id=record_id, payload=payload)
    return event


async def record(
    connection: AsyncConnection, tenant_id: UUID, entries: list[dict[str, Any]]
) -> None:
    """Number and store one tenant's events in the connection's transaction; announce them."""
    await record_many(connection, [(tenant_id, entries)])


async def record_many(
    connection: AsyncConnection,
    batches: Sequence[tuple[UUID, list[dict[str, Any]]]],
    *,
    announce_now: bool = True,
) -> list[UUID]:
    """The same for several tenants at once (a group commit); returns the tenants touched.

    With `announce_now=False` the caller sends the PostgreSQL notification itself, with
    `announce`, once its transaction has committed.
    """
    merged: dict[UUID, list[dict[str, Any]]] = {}
    for tenant_id, entries in batches:
        merged.setdefault(tenant_id, []).extend(entries)
    # Counter rows are locked in one order (by tenant id), so two groups never deadlock.
    ordered = sorted(((t, e) for t, e in merged.items() if e), key=lambda b: b[0].bytes)
    if not ordered:
        return []
    now = utcnow()
    for tenant_id, entries in ordered:
        if len(ordered) > 1:  # each tenant's rows under its own row-level security setting
            await set_tenant(connection, tenant_id)
        await _record(connection, tenant_id, entries, now)
    tenants = [tenant_id for tenant_id, _ in ordered]
    await mark(connection, tenants, announce_now=announce_now)
    return tenants


async def number(connection: AsyncConnection, tenant_id: UUID, count: int) -> int:
    """Take the tenant's next `count` numbers for records that keep their number on their own
    row (actions and audit events: app/streams/events.py); the first of them. The counter row
    stays locked until the transaction ends, as for `record`; the caller calls `mark` after."""
    return await _advance(connection, tenant_id, count) - count + 1


async def keep(
    connection: AsyncConnection,
    tenant_id: UUID,
    versions: Sequence[tuple[int, Any, dict[str, Any]]],
) -> None:
    """Store events under the numbers they already have, (number, time, event) each: the
    version a record's row holds as its event, when the row is about to take a new number (a
    change of an action). The stream's pruning deletes them as any event."""
    rows = [
        {**event, "tenant_id": tenant_id, "seq": seq, "created_at": created_at}
        for seq, created_at, event in versions
    ]
    await insert_values(connection, EVENTS, EVENT_COLUMNS, rows)


async def keep_deleted(
    connection: AsyncConnection,
    tenant_id: UUID,
    rows: Sequence[dict[str, Any]],
    at: str,
    event_of: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """Keep the events of record rows that retention is deleting, where the stream still holds
    them (numbers above the tenant's `pruned_through`: a destination has yet to deliver them,
    or they are within STREAM_RETENTION_HOURS); the others are gone from the stream already,
    and no event is built for them. `at` names the column of the event's time, `event_of`
    builds a row's event."""
    numbered = [row for row in rows if row["stream_seq"] is not None]
    if not numbered:
        return
    held = await connection.scalar(
        select(HEADS.c.pruned_through).where(HEADS.c.tenant_id == tenant_id)
    )
    versions = [
        (row["stream_seq"], row[at], event_of(row))
        for row in numbered
        if row["stream_seq"] > (held or 0)
    ]
    await keep(connection, tenant_id, versions)


async def mark(
    connection: AsyncConnection, tenants: Sequence[UUID], *, announce_now: bool = True
) -> None:
    """Announce new events of these tenants once the transaction commits: `pg_notify` inside
    it on PostgreSQL (or, with `announce_now=False`, `announce` by the caller after its
    commit); the connection marked for the hub on SQLite."""
    if connection.dialect.name != "postgresql":
        connection.info.setdefault(SQLITE_POKES, set()).update(tenants)
    elif announce_now and tenants:
        await connection.execute(select(func.pg_notify(CHANNEL, _payload(list(tenants)))))


async def announce(connection: AsyncConnection, tenants: Sequence[UUID]) -> None:
    """Notify the readers of these tenants' new events, outside any transaction (PostgreSQL).

    For writers that commit first and announce after (see the module's docstring).
    """
    if tenants and connection.dialect.name == "postgresql":
        driver = await _driver(connection)
        await driver.execute("SELECT pg_notify($1, $2)", CHANNEL, _payload(tenants))


def _payload(tenants: Sequence[UUID]) -> str:
    return ",".join(str(tenant_id) for tenant_id in tenants)


async def _driver(connection: AsyncConnection) -> Any:
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None, "a connection of the pool has its driver connection"
    return driver


async def _record(
    connection: AsyncConnection, tenant_id: UUID, entries: list[dict[str, Any]], now: Any
) -> None:
    first = await _advance(connection, tenant_id, len(entries)) - len(entries) + 1
    events = [
        {**item, "tenant_id": tenant_id, "seq": first + offset, "created_at": now}
        for offset, item in enumerate(entries)
    ]
    await insert_values(connection, EVENTS, EVENT_COLUMNS, events)


async def _advance(connection: AsyncConnection, tenant_id: UUID, count: int) -> int:
    """Move the tenant's counter on by `count` (locking its row); the new last number."""
    statement = _advance_statement(connection.dialect.name)
    parameters = {"tenant_id": tenant_id, "count": count}
    return int((await connection.execute(statement, parameters)).scalar_one())


@functools.cache
def _advance_statement(dialect: str) -> Any:
    """The counter's upsert, built once per dialect: its values are bound parameters, none in
    the DO UPDATE (which a distributed PostgreSQL refuses)."""
    statement = upsert_insert(dialect, HEADS).values(
        tenant_id=bindparam("tenant_id"), seq=bindparam("count"), pruned_through=0
    )
    return statement.on_conflict_do_update(
        index_elements=[HEADS.c.tenant_id], set_={"seq": HEADS.c.seq + statement.excluded.seq}
    ).returning(HEADS.c.seq)
