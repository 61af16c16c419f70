"""Recording audit events from request bodies: build them, write them, answer.

The routes' path: every event of a request is built (validated, redacted) before anything is
queued, so a bad item refuses its whole request with a 422 naming it, and nothing is stored.
Without an `Idempotency-Key` the events go to the audit writer (group commit on PostgreSQL,
app/audits/writer.py) and the answer is made from the rows it stored. With a key the same
events and the same answer go through `AuditService.record_once`, in the request's session.

In a batch, an update whose `before` equals its `after` changed nothing: like the single
POST (which answers 200 for it), it records nothing; the batch goes on with the other events
and names the skipped indexes in its answer. A batch that records nothing at all is a 200.
"""

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from app.audits.events import NO_CHANGES, Event, EventBuilder
from app.audits.repository import AuditRow
from app.audits.schemas import AuditBatch, AuditBatchCreated, AuditCreate, AuditRead, NotRecorded
from app.audits.writer import AuditWriter
from app.core.idempotency import Written, request_hash


@dataclass(frozen=True)
class Prepared:
    """The events of one request, and how to answer once they are stored."""

    events: list[Event]
    answer: Callable[[list[AuditRow]], Written]
    fingerprint: str  # of the validated request, for an Idempotency-Key


def _answer_one(rows: list[AuditRow]) -> Written:
    if not rows:
        return Written(200, NotRecorded(detail=NO_CHANGES).model_dump(mode="json"))
    return Written(201, AuditRead.of_row(rows[0]).model_dump(mode="json"))


class AuditRecorder:
    """Records one tenant's audit events through the audit writer."""

    def __init__(self, tenant_id: UUID, events: EventBuilder, writer: AuditWriter) -> None:
        self.tenant_id = tenant_id
        self.events = events
        self.writer = writer

    def prepare(self, body: AuditCreate) -> Prepared:
        """The event of one body (none for an update that changed nothing), or a 422."""
        event = self.events.from_body(body)
        fingerprint = request_hash("audit", body.model_dump(mode="json"))
        return Prepared([] if event is None else [event], _answer_one, fingerprint)

    def prepare_batch(self, batch: AuditBatch) -> Prepared:
        """The events of a batch, in order; one invalid item is a 422 naming its index."""
        events, skipped = [], []
        for index, body in enumerate(batch.events):
            event = self.events.from_body(body, ("body", "events", index))
            if event is None:
                skipped.append(index)
            else:
                events.append(event)

        def answer(rows: list[AuditRow]) -> Written:
            created = AuditBatchCreated(
                created=len(rows), skipped=skipped, events=[AuditRead.of_row(r) for r in rows]
            )
            return Written(201 if rows else 200, created.model_dump(mode="json"))

        fingerprint = request_hash("audit_batch", batch.model_dump(mode="json"))
        return Prepared(events, answer, fingerprint)

    async def write(self, prepared: Prepared) -> Written:
        """Append the prepared events (committed on return) and answer with their rows."""
        if not prepared.events:
            return prepared.answer([])
        return prepared.answer(await self.writer.write(self.tenant_id, prepared.events))
