"""The hot path of recording audit events: ordinary POSTs to /api/v1/logs/audits and /batch.

Served by a fast lane (app/core/lane.py: what it does and when it lets the routes answer),
which records through the same `AuditRecorder` as the routes in `router.py`, and so through
the same group commit. A request gets the same answer on either path
(tests/audits/test_audit_ingest.py compares them).
"""

from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from starlette.types import ASGIApp

from app.audits.dependencies import recorder_for
from app.audits.schemas import AuditBatch, AuditCreate
from app.core.idempotency import Written
from app.core.lane import FastLane, LaneRoute

RECORD_AUDIT = "/api/v1/logs/audits"
RECORD_AUDITS = "/api/v1/logs/audits/batch"


async def _record(state: Any, tenant_id: UUID, body: AuditCreate) -> Written:
    recorder = recorder_for(state, tenant_id)
    return await recorder.write(recorder.prepare(body))


async def _record_batch(state: Any, tenant_id: UUID, batch: AuditBatch) -> Written:
    recorder = recorder_for(state, tenant_id)
    return await recorder.write(recorder.prepare_batch(batch))


ROUTES = {
    RECORD_AUDIT: LaneRoute(TypeAdapter(AuditCreate), _record),
    RECORD_AUDITS: LaneRoute(TypeAdapter(AuditBatch), _record_batch),
}


class AuditLane(FastLane):
    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, ROUTES)
