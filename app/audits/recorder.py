"""Recording audit events from request bodies: build them, write them, answer.

The steps are those of every recorded write (app/core/recording.py): every event of a request
is built (validated, redacted) before anything is queued, so a bad item refuses its whole
request with a 422 naming it, and nothing is stored. Without an `Idempotency-Key` the events go
to the worker's writer (app/core/writer.py: group commit on PostgreSQL) with `AUDIT_EVENTS`,
which extends the tenants' chains, and the answer is made from the rows it stored. With a key
the same events and the same answer go through the same `write` with a writer on the request's
session (`AuditService.record_once`).

In a batch, an update whose `before` equals its `after` changed nothing: like the single
POST (which answers 200 for it), it records nothing; the batch goes on with the other events
and names the skipped indexes in its answer. A batch that records nothing at all is a 200.
"""

from functools import partial
from uuid import UUID

from app.audits.events import NO_CHANGES, Event, EventBuilder
from app.audits.repository import AuditRow, extend_chains
from app.audits.schemas import AuditBatch, AuditBatchCreated, AuditCreate, AuditRead, NotRecorded
from app.core import metrics
from app.core.idempotency import Written, request_hash
from app.core.recording import Prepared
from app.core.writer import Kind, Writer
from app.streamlog import record as streamlog

AuditWriter = Writer[Event, list[AuditRow]]
PreparedEvents = Prepared[Event, list[AuditRow]]

# How audit events go in: appended to their tenants' chains, in order, for every writer.
AUDIT_EVENTS: Kind[Event, list[AuditRow]] = Kind(
    extend_chains,
    streamlog.announce,
    metrics.AUDITS_RECORDED,
    metrics.AUDIT_GROUP_ROWS,
    metrics.AUDIT_GROUP_SECONDS,
)


def _answer_one(rows: list[AuditRow]) -> Written:
    if not rows:
        return Written(200, NotRecorded(detail=NO_CHANGES).model_dump(mode="json"))
    return Written(201, AuditRead.of_row(rows[0]).model_dump(mode="json"))


def _answer_batch(skipped: list[int], rows: list[AuditRow]) -> Written:
    created = AuditBatchCreated(
        created=len(rows), skipped=skipped, events=[AuditRead.of_row(r) for r in rows]
    )
    return Written(201 if rows else 200, created.model_dump(mode="json"))


def _fingerprint(operation: str, body: AuditCreate | AuditBatch) -> str:
    return request_hash(operation, body.model_dump(mode="json"))


class AuditRecorder:
    """Records one tenant's audit events through a writer."""

    def __init__(self, tenant_id: UUID, events: EventBuilder, writer: AuditWriter) -> None:
        self.tenant_id = tenant_id
        self.events = events
        self.writer = writer

    def prepare(self, body: AuditCreate) -> PreparedEvents:
        """The event of one body (none for an update that changed nothing), or a 422."""
        event = self.events.from_body(body)
        events = [] if event is None else [event]
        return Prepared(events, _answer_one, partial(_fingerprint, "audit", body))

    def prepare_batch(self, body: AuditBatch) -> PreparedEvents:
        """The events of a batch, in order; one invalid item is a 422 naming its index."""
        events, skipped = [], []
        for index, item in enumerate(body.events):
            event = self.events.from_body(item, ("body", "events", index))
            if event is None:
                skipped.append(index)
            else:
                events.append(event)
        answer = partial(_answer_batch, skipped)
        return Prepared(events, answer, partial(_fingerprint, "audit_batch", body), batch=True)

    async def write(self, prepared: PreparedEvents) -> Written:
        """Append the prepared events (committed on return) and answer with their rows."""
        if not prepared.items:
            return prepared.answer([])
        return prepared.answer(await self.writer.write(self.tenant_id, prepared.items))
