"""From a request body to a stored action row: defaults, durations, redaction, limits.

A record created with a non-final status (`pending`, `in_progress`, `retry`) is a running
action: its `started_at` defaults to the time it was recorded. A final one gets `completed_at`
= now (never before its start). A given `execution_time_ms` is kept; otherwise it is computed
from `started_at` and `completed_at` when both are known. Payloads are redacted and checked
(depth, storable text) on the way, with errors named per field.

A client may send its own `id`; the row then keeps the fingerprint of its body
(`request_hash`), so that a retry can be told from a different write (app/actions/recorder.py).

Rows are keyed by column name and carry no `tenant_id`: the insert stamps the tenant it is
given (`insert_actions`), so a row cannot be written for another tenant than the caller's.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from app.actions.models import ACTION_COLUMNS
from app.actions.payloads import PayloadCleaner
from app.actions.schemas import ActionCreate, StepCreate
from app.actions.statuses import FINAL
from app.core.db import new_id
from app.core.errors import Loc
from app.core.idempotency import request_hash
from app.core.redact import PayloadRules

MAX_MS = 2**31 - 1
# Body fields stored as given; the others are computed or cleaned below.
_COMPUTED = frozenset(
    {"id", "started_at", "completed_at", "execution_time_ms", "steps"}
    | {"request_payload", "response_data", "metadata"}
)
COPIED_FIELDS = tuple(
    name for name in ActionCreate.model_fields if name in ACTION_COLUMNS and name not in _COMPUTED
)


# Free text that may quote a credential (an error naming a URL, a client's header)
SCRUBBED_FIELDS = ("error_message", "user_agent")


def duration_ms(started: datetime | None, completed: datetime | None) -> int | None:
    if started is None or completed is None:
        return None
    return min(MAX_MS, max(0, round((completed - started) / timedelta(milliseconds=1))))


def stamp_end(started: datetime | None, now: datetime) -> datetime:
    """The server's completion time: now, but never before a start sent by a skewed clock."""
    return max(now, started) if started is not None else now


def body_fingerprint(data: ActionCreate) -> str:
    """What makes a retry under a client id a replay: the validated body, whatever the key
    order, spacing or status alias it was sent with."""
    return request_hash("record", data.model_dump(mode="json"))


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class PayloadChecks(Protocol):
    """Checks of new rows against their action types' schemas (app/action_schemas/catalog.py):
    refuses with a 422, or notes `schema_errors` and `schema_version` on the rows."""

    def check(self, tenant_id: UUID, rows: list[dict[str, Any]], batch: bool) -> None: ...

    def check_update(
        self, tenant_id: UUID, action_type: str, changed: dict[str, Any], previous: Any
    ) -> tuple[Any, int | None] | None: ...


class RowBuilder:
    def __init__(
        self,
        rules: PayloadRules,
        clock: Callable[[], datetime],
        checks: PayloadChecks | None = None,
    ) -> None:
        self.rules = rules
        self.clock = clock
        self.checks = checks

    def cleaner(self) -> PayloadCleaner:
        return PayloadCleaner(self.rules.redactor, self.rules.max_json_depth)

    def row(
        self, data: ActionCreate, now: datetime, cleaner: PayloadCleaner, loc: Loc
    ) -> dict[str, Any]:
        """The stored row of one body (errors are noted in `cleaner`, raised by the caller)."""
        final = data.status in FINAL
        started_at, completed_at = data.started_at, data.completed_at
        if started_at is None and not final:
            started_at = now
        if completed_at is None and final:
            completed_at = stamp_end(started_at, now)
        execution_time_ms = data.execution_time_ms
        if execution_time_ms is None:
            execution_time_ms = duration_ms(started_at, completed_at)
        row = {name: getattr(data, name) for name in COPIED_FIELDS}
        for name in SCRUBBED_FIELDS:
            if row[name] is not None:
                row[name] = self.rules.redactor.scrub(row[name])
        row.update(
            id=data.id or new_id(),
            request_hash=body_fingerprint(data) if data.id else None,
            request_payload=cleaner.clean(data.request_payload, (*loc, "request_payload")),
            response_data=cleaner.clean(data.response_data, (*loc, "response_data")),
            metadata=cleaner.clean(data.metadata, (*loc, "metadata")),
            steps=[
                self.step(step, now, cleaner, (*loc, "steps", i))
                for i, step in enumerate(data.steps)
            ],
            execution_time_ms=execution_time_ms,
            started_at=started_at,
            completed_at=completed_at,
            created_at=now,
            updated_at=now,
        )
        return row

    @staticmethod
    def step(step: StepCreate, now: datetime, cleaner: PayloadCleaner, loc: Loc) -> dict[str, Any]:
        return {
            "step": step.step,
            "status": step.status,
            "details": cleaner.clean(step.details, (*loc, "details")),
            "timestamp": _iso(step.timestamp or now),
        }
