"""The hot path of recording actions: ordinary POSTs to /api/v1/logs/actions and /actions/batch.

Served by a fast lane (app/core/lane.py: what it does and when it lets the routes answer),
which records through the same `Recorder` as the routes in `router.py`. A request gets the same
answer on either path (tests/actions/test_action_ingest.py compares them).
"""

from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from starlette.types import ASGIApp

from app.actions.dependencies import recorder_for
from app.actions.schemas import ActionBatch, ActionCreate
from app.core.idempotency import Written
from app.core.lane import FastLane, LaneRoute

RECORD = "/api/v1/logs/actions"
RECORD_BATCH = "/api/v1/logs/actions/batch"


async def _record(state: Any, tenant_id: UUID, item: ActionCreate) -> Written:
    return await recorder_for(state, tenant_id).record(item)


async def _record_batch(state: Any, tenant_id: UUID, items: list[ActionCreate]) -> Written:
    return await recorder_for(state, tenant_id).record_batch(items)


ROUTES = {
    RECORD: LaneRoute(TypeAdapter(ActionCreate), _record),
    RECORD_BATCH: LaneRoute(TypeAdapter(ActionBatch), _record_batch),
}


class IngestLane(FastLane):
    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, ROUTES)
