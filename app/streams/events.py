"""Reading the stream: one tenant's events after a position, from the places they are kept.

A record is its own stream event: an action's row numbers its latest event
(`action_logs.stream_seq`; the payload is the row's summary, as the list routes write it, its
time the row's `updated_at`), and an audit row its event (`audit_logs.stream_seq`; the row as
the audit list shows it, personal fields sealed). Every other event is a row of
`stream_events`: signed tree heads, the earlier versions of changed actions (kept there when
the action takes a new number), and the events of records stored before numbers were kept on
the row.

All three are read by one UNION ALL statement, so a reader sees one snapshot: an action that
changes while it reads is found either at its old number on its row, or at its old number in
`stream_events` and its new one on its row, never at neither. Each part walks its own index
(tenant, number) from the position, at most `limit` rows; every part names the tenant, so a
distributed PostgreSQL routes the whole statement to the tenant's shard. The columns one part
lacks are NULL in it, typed as the part that has them.

app/actions/repository.py and app/audits/repository.py write the numbers on the rows,
app/streamlog/record.py hands them out; the live stream (app/streams/hub.py) and destinations
(app/destinations/sender.py) read here.
"""

import functools
from typing import Any, NamedTuple
from typing import cast as typed
from uuid import UUID

from sqlalchemy import (
    Column,
    String,
    Table,
    bindparam,
    cast,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.actions.models import action_logs
from app.actions.schemas import SUMMARY_FIELDS
from app.audits.models import AuditLog
from app.audits.repository import event_payload
from app.streamlog.models import StreamEvent
from app.streamlog.record import FILTER_FIELDS, as_json

EVENTS = typed(Table, StreamEvent.__table__)
ACTIONS = action_logs
AUDITS = typed(Table, AuditLog.__table__)
# What an action's payload needs beyond the filter fields, and an audit row's (all of it).
# (`tenant_id` is the reader's own: not read back.)
_NOT_READ = {"tenant_id", *FILTER_FIELDS}
_ACTION_ONLY = tuple(name for name in SUMMARY_FIELDS if name not in _NOT_READ)
_AUDIT_ONLY = tuple(c.name for c in AUDITS.columns if c.name not in {"tenant_id", "stream_seq"})
_COMMON = 4 + len(FILTER_FIELDS)  # seq, kind, payload, created_at and the filter fields


class StoredEvent(NamedTuple):
    """An event as stored: its number, kind, payload (JSON text), time and filter fields."""

    seq: int
    kind: str
    payload: str
    created_at: Any
    action_type: str | None
    status: str | None
    provider_name: str | None
    service: str | None
    user_id: str | None
    session_id: str | None
    correlation_id: str | None


async def events_after(
    connection: AsyncConnection,
    tenant_id: UUID,
    position: int,
    limit: int,
    upto: int | None = None,
) -> list[StoredEvent]:
    """The tenant's events numbered above `position` (and at most `upto`), in order."""
    parameters = {"tenant_id": tenant_id, "position": position, "limit": limit, "upto": upto}
    rows = (await connection.execute(_statement(upto is not None), parameters)).all()
    events = []
    for row in rows:
        seq, kind, payload, created_at, *fields = row[:_COMMON]
        if payload is None:  # a record's own row: its payload is built from it
            values = row._mapping
            if kind == "action":
                summary = {
                    name: tenant_id if name == "tenant_id" else values[_column(name, "a")]
                    for name in SUMMARY_FIELDS
                }
                payload = as_json(summary)
            else:
                row_values = {name: values[f"u_{name}"] for name in _AUDIT_ONLY}
                payload = event_payload({**row_values, "tenant_id": tenant_id})
        events.append(StoredEvent(seq, kind, payload, created_at, *fields))
    return events


def _column(name: str, prefix: str) -> str:
    """The label of a payload column: the filter fields are common to every part."""
    return name if name in FILTER_FIELDS else f"{prefix}_{name}"


def _nulls(table: Table, names: tuple[str, ...], prefix: str) -> list[Any]:
    return [cast(null(), table.c[name].type).label(f"{prefix}_{name}") for name in names]


def _columns(table: Table, names: tuple[str, ...], prefix: str) -> list[Any]:
    return [table.c[name].label(f"{prefix}_{name}") for name in names]


def _filters(table: Table) -> list[Any]:
    """The filter fields of a part: its own columns of those names, NULL for the others."""
    present = {column.name: column for column in table.columns}
    return [
        present[name] if name in present else cast(null(), EVENTS.c[name].type).label(name)
        for name in FILTER_FIELDS
    ]


@functools.cache
def _statement(bounded: bool) -> Any:
    """The statement, built once (with or without an upper bound): building it takes longer
    than running it. Its values are bound parameters: tenant_id, position, limit, upto."""
    tenant_id: Any = bindparam("tenant_id")
    position: Any = bindparam("position")
    limit: Any = bindparam("limit")

    def numbered(query: Any, number: Column[Any]) -> Any:
        query = query.where(number > position)
        if bounded:
            query = query.where(number <= bindparam("upto"))
        return select(query.order_by(number).limit(limit).subquery())

    a, u = ACTIONS.c, AUDITS.c
    # the actions first: the union's columns take their types from its first part
    actions = select(
        a.stream_seq.label("seq"),
        literal_column("'action'", String).label("kind"),
        null().label("payload"),
        a.updated_at.label("created_at"),
        *_filters(ACTIONS),
        *_columns(ACTIONS, _ACTION_ONLY, "a"),
        *_nulls(AUDITS, _AUDIT_ONLY, "u"),
    ).where(a.tenant_id == tenant_id)
    audits = select(
        u.stream_seq.label("seq"),
        literal_column("'audit'", String).label("kind"),
        null().label("payload"),
        u.created_at.label("created_at"),
        *_filters(AUDITS),
        *_nulls(ACTIONS, _ACTION_ONLY, "a"),
        *_columns(AUDITS, _AUDIT_ONLY, "u"),
    ).where(u.tenant_id == tenant_id)
    events = select(
        EVENTS.c.seq,
        EVENTS.c.kind,
        EVENTS.c.payload,
        EVENTS.c.created_at,
        *_filters(EVENTS),
        *_nulls(ACTIONS, _ACTION_ONLY, "a"),
        *_nulls(AUDITS, _AUDIT_ONLY, "u"),
    ).where(EVENTS.c.tenant_id == tenant_id)
    parts = [
        numbered(actions, a.stream_seq),
        numbered(audits, u.stream_seq),
        numbered(events, EVENTS.c.seq),
    ]
    both = union_all(*parts).subquery()
    return select(both).order_by(both.c.seq).limit(limit)
