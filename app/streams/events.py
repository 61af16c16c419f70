"""Writing the stream: each writing transaction numbers its events and announces them.

Every path that records or changes an action, or appends an audit row, calls one function
here inside its transaction. It advances the tenant's counter (`stream_heads.seq`) by the
number of events with one upsert, which also locks the counter row until the transaction
ends, inserts the events with their numbers, and announces the tenants touched:

- on PostgreSQL with `pg_notify` inside the transaction, so that the notification is sent
  when, and only when, the transaction commits, at most one per transaction (one payload
  naming every tenant of a group commit; PostgreSQL folds repeats of the same payload);
- on SQLite by marking the connection; the hub of this process reads after the commit
  (see app/streams/hub.py).

Why the counter row: an id taken before commit (a sequence, a timestamp, a UUIDv7) can become
visible after a higher one, and a reader that moved past the higher one would skip it. With
the row lock, a tenant's second transaction cannot take its numbers before the first one has
committed or rolled back, so numbers become visible in order and without holes.
"""

from collections.abc import Iterable, Mapping
from typing import Any, cast
from uuid import UUID

import orjson
from sqlalchemy import Table, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.actions.schemas import SUMMARY_FIELDS
from app.audits.models import AuditLog
from app.audits.schemas import AuditRead
from app.core.db import utcnow
from app.streams.models import StreamEvent, StreamHead

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
_ATTRIBUTE = {"metadata": "metadata_"}
_HEADS = cast(Table, StreamHead.__table__)
_EVENTS = cast(Table, StreamEvent.__table__)
_COPY_COLUMNS = tuple(column.name for column in _EVENTS.columns)


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_UTC_Z).decode()


def action_entry(row: Mapping[str, Any] | Any) -> dict[str, Any]:
    """The event of an action (a row dict or an ORM object): its summary, as the list shows it."""
    get = row.get if isinstance(row, Mapping) else lambda name: getattr(row, name, None)
    summary = {name: get(_ATTRIBUTE.get(name, name)) for name in SUMMARY_FIELDS}
    entry = {name: get(name) for name in FILTER_FIELDS}
    entry.update(kind="action", record_id=summary["id"], payload=_json(summary))
    return entry


def audit_entry(row: AuditLog) -> dict[str, Any]:
    """The event of an audit row: the row as the audit list shows it."""
    payload = AuditRead.model_validate(row).model_dump_json()
    entry: dict[str, Any] = dict.fromkeys(FILTER_FIELDS)
    entry.update(kind="audit", record_id=row.id, user_id=row.user_id, payload=payload)
    return entry


async def record(
    connection: AsyncConnection, tenant_id: UUID, entries: list[dict[str, Any]]
) -> None:
    """Number and store one tenant's events in the connection's transaction, and announce them."""
    await record_many(connection, [(tenant_id, entries)])


async def record_actions(connection: AsyncConnection, rows: Iterable[Mapping[str, Any]]) -> None:
    """The events of newly inserted action rows, of any tenants (a group commit)."""
    by_tenant: dict[UUID, list[dict[str, Any]]] = {}
    for row in rows:
        by_tenant.setdefault(row["tenant_id"], []).append(action_entry(row))
    await record_many(connection, list(by_tenant.items()))


async def record_many(
    connection: AsyncConnection, batches: list[tuple[UUID, list[dict[str, Any]]]]
) -> None:
    batches = [(tenant_id, entries) for tenant_id, entries in batches if entries]
    if not batches:
        return
    # Counter rows are locked in one order (by tenant id), so two groups never deadlock.
    batches.sort(key=lambda batch: batch[0].bytes)
    now = utcnow()
    events: list[dict[str, Any]] = []
    for tenant_id, entries in batches:
        last = await _advance(connection, tenant_id, len(entries))
        first = last - len(entries) + 1
        for offset, entry in enumerate(entries):
            events.append(
                {**entry, "tenant_id": tenant_id, "seq": first + offset, "created_at": now}
            )
    postgres = connection.dialect.name == "postgresql"
    if postgres and len(events) > 20:
        driver: Any = (await connection.get_raw_connection()).driver_connection
        records = [tuple(event[name] for name in _COPY_COLUMNS) for event in events]
        await driver.copy_records_to_table("stream_events", records=records, columns=_COPY_COLUMNS)
    else:
        await connection.execute(insert(_EVENTS), events)
    tenants = [tenant_id for tenant_id, _ in batches]
    if postgres:
        payload = ",".join(str(tenant_id) for tenant_id in tenants)
        await connection.execute(select(func.pg_notify(CHANNEL, payload)))
    else:
        connection.info.setdefault(SQLITE_POKES, set()).update(tenants)


async def _advance(connection: AsyncConnection, tenant_id: UUID, count: int) -> int:
    """Move the tenant's counter on by `count` (locking its row); the new last number."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_HEADS).values(tenant_id=tenant_id, seq=count, pruned_through=0)
    statement = statement.on_conflict_do_update(
        index_elements=[_HEADS.c.tenant_id], set_={"seq": _HEADS.c.seq + count}
    ).returning(_HEADS.c.seq)
    return int((await connection.execute(statement)).scalar_one())
