"""Reading the stream: one tenant's events after a position, from the two places they are kept.

An action's latest event is its own row: `action_logs.stream_seq` numbers it, and the event's
payload is the row's summary (as the list routes write it), its time the row's `updated_at`.
Every other event is a row of `stream_events`: audit events, signed tree heads, the earlier
versions of changed actions (kept there when the action takes a new number), and the events
of actions recorded before numbers were kept on the row.

Both are read by one UNION ALL statement, so a reader sees one snapshot: an action that
changes while it reads is found either at its old number on its row, or at its old number in
`stream_events` and its new one on its row, never at neither. Each side walks its own index
(tenant, number) from the position, at most `limit` rows; every part names the tenant, so a
distributed PostgreSQL routes the whole statement to the tenant's shard.

app/actions/repository.py writes the numbers on the rows, app/streamlog/record.py hands them
out; the live stream (app/streams/hub.py) and destinations (app/destinations/sender.py) read
here.
"""

from typing import Any, NamedTuple
from typing import cast as typed
from uuid import UUID

from sqlalchemy import String, Table, cast, literal_column, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from app.actions.models import action_logs
from app.actions.schemas import SUMMARY_FIELDS
from app.streamlog.models import StreamEvent
from app.streamlog.record import FILTER_FIELDS, as_json

EVENTS = typed(Table, StreamEvent.__table__)
ACTIONS = action_logs
# The summary's fields that are not filter fields: NULL on the side of `stream_events`.
_SUMMARY_ONLY = tuple(name for name in SUMMARY_FIELDS if name not in FILTER_FIELDS)


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
    rows = (await connection.execute(_query(tenant_id, position, limit, upto))).all()
    events = []
    for row in rows:
        seq, kind, payload, created_at, *fields = row[:_WIDTH]
        if payload is None:  # an action's row: its summary, as listed
            values = row._mapping
            payload = as_json({name: values[_COLUMN_OF[name]] for name in SUMMARY_FIELDS})
        events.append(StoredEvent(seq, kind, payload, created_at, *fields))
    return events


_WIDTH = 4 + len(FILTER_FIELDS)
_COLUMN_OF = {name: name if name in FILTER_FIELDS else f"a_{name}" for name in SUMMARY_FIELDS}


def _query(tenant_id: UUID, position: int, limit: int, upto: int | None) -> Any:
    numbered = ACTIONS.c.stream_seq
    actions = select(
        numbered.label("seq"),
        literal_column("'action'", String).label("kind"),
        null().label("payload"),
        ACTIONS.c.updated_at.label("created_at"),
        *(ACTIONS.c[name] for name in FILTER_FIELDS),
        *(ACTIONS.c[name].label(_COLUMN_OF[name]) for name in _SUMMARY_ONLY),
    ).where(ACTIONS.c.tenant_id == tenant_id, numbered > position)
    events = select(
        EVENTS.c.seq,
        EVENTS.c.kind,
        EVENTS.c.payload,
        EVENTS.c.created_at,
        *(EVENTS.c[name] for name in FILTER_FIELDS),
        *(cast(null(), ACTIONS.c[name].type).label(_COLUMN_OF[name]) for name in _SUMMARY_ONLY),
    ).where(EVENTS.c.tenant_id == tenant_id, EVENTS.c.seq > position)
    if upto is not None:
        actions = actions.where(numbered <= upto)
        events = events.where(EVENTS.c.seq <= upto)
    # the actions first: the union's columns take their types from its first part
    parts = [
        select(part.order_by(order).limit(limit).subquery())
        for part, order in ((actions, numbered), (events, EVENTS.c.seq))
    ]
    both = union_all(*parts).subquery()
    return select(both).order_by(both.c.seq).limit(limit)
