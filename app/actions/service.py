"""Rules for action logs: recording (single, batch, idempotent), lifecycle, steps, queries.

A record created with a non-final status (`pending`, `in_progress`, `retry`) is a running
action: its `started_at` defaults to the time it was recorded, `PATCH` moves it on, and
reaching a final status stamps `completed_at` and computes `execution_time_ms` from
`started_at` unless the caller gave them. A record in a final status is never changed again.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.filters import ActionFilter
from app.actions.idempotency import IdempotencyGuard, IdempotencyRepository, Written, request_hash
from app.actions.models import ActionLog
from app.actions.payloads import Loc, PayloadCleaner, invalid
from app.actions.repository import ActionRepository
from app.actions.rollups import contribution
from app.actions.schemas import (
    MAX_STEPS,
    SUMMARY_FIELDS,
    ActionCreate,
    ActionRead,
    ActionUpdate,
    BatchCreated,
    StepCreate,
)
from app.actions.statuses import FINAL
from app.actions.writer import GroupCommitWriter
from app.core.config import Settings
from app.core.db import new_id, utcnow
from app.core.errors import Conflict, NotFound
from app.core.pagination import Cursor, Order
from app.core.redact import Redactor

MAX_MS = 2**31 - 1


def duration_ms(started: datetime | None, completed: datetime | None) -> int | None:
    if started is None or completed is None:
        return None
    return min(MAX_MS, max(0, round((completed - started) / timedelta(milliseconds=1))))


def _stamp_end(started: datetime | None, now: datetime) -> datetime:
    """The server's completion time: now, but never before a start sent by a skewed clock."""
    return max(now, started) if started is not None else now


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class ActionService:
    """The action logs of one tenant.

    `session` may be None for a service that only records through the group-commit `writer`
    without idempotency keys (the ingest lane, app/actions/ingest.py): opening a session per
    request would cost more than such a write does. Everything else needs the session.
    """

    def __init__(
        self,
        session: AsyncSession | None,
        tenant_id: UUID,
        settings: Settings,
        redactor: Redactor,
        clock: Callable[[], datetime] = utcnow,
        writer: GroupCommitWriter | None = None,
    ) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.writer = writer
        self.settings = settings
        self.redactor = redactor
        self.clock = clock

    def _session(self) -> AsyncSession:
        if self.session is None:
            raise RuntimeError("this ActionService has no session: it only records via its writer")
        return self.session

    @cached_property
    def actions(self) -> ActionRepository:
        return ActionRepository(self._session(), self.tenant_id)

    @cached_property
    def keys(self) -> IdempotencyRepository:
        return IdempotencyRepository(self._session(), self.tenant_id)

    # Recording

    async def record(self, data: ActionCreate, idempotency_key: str | None = None) -> Written:
        """Store one action; the response body is the stored record."""
        now = self.clock()
        guard = self._guard(idempotency_key, "create", [data], now)
        if (previous := await guard.previous()) is not None:
            return previous
        cleaner = self._cleaner()
        row = self._row(data, now, cleaner, ())
        cleaner.raise_errors()
        written = Written(201, ActionRead.model_validate(row).model_dump(mode="json"))
        if (winner := await guard.claim(written)) is not None:
            return winner
        await self._store([row], shared=idempotency_key is None)
        return written

    async def record_batch(
        self, items: list[ActionCreate], idempotency_key: str | None = None
    ) -> Written:
        """Store every item or none: one invalid item rejects the batch."""
        now = self.clock()
        guard = self._guard(idempotency_key, "batch", items, now)
        if (previous := await guard.previous()) is not None:
            return previous
        cleaner = self._cleaner()
        rows = [self._row(item, now, cleaner, (index,)) for index, item in enumerate(items)]
        cleaner.raise_errors()
        created = BatchCreated(created=len(rows), ids=[row["id"] for row in rows])
        written = Written(201, created.model_dump(mode="json"))
        if (winner := await guard.claim(written)) is not None:
            return winner
        await self._store(rows, shared=idempotency_key is None)
        return written

    async def _store(self, rows: list[dict[str, Any]], shared: bool) -> None:
        """Insert through the group-commit writer when there is one and the write stands alone.

        A write with an idempotency key commits in the request's own transaction, together
        with its key.
        """
        if shared and self.writer is not None:
            await self.writer.write(rows)
        else:
            await self.actions.insert(rows)

    def _guard(
        self, key: str | None, operation: str, items: list[ActionCreate], now: datetime
    ) -> IdempotencyGuard:
        if key is None:
            return IdempotencyGuard(None, None, "", now, self.settings.idempotency_ttl_hours)
        fingerprint = request_hash(operation, [item.model_dump(mode="json") for item in items])
        return IdempotencyGuard(
            self.keys, key, fingerprint, now, self.settings.idempotency_ttl_hours
        )

    def _cleaner(self) -> PayloadCleaner:
        return PayloadCleaner(self.redactor, self.settings.max_json_depth)

    def _row(
        self, data: ActionCreate, now: datetime, cleaner: PayloadCleaner, loc: Loc
    ) -> dict[str, Any]:
        final = data.status in FINAL
        started_at, completed_at = data.started_at, data.completed_at
        if started_at is None and not final:
            started_at = now
        if completed_at is None and final:
            completed_at = _stamp_end(started_at, now)
        execution_time_ms = data.execution_time_ms
        if execution_time_ms is None:
            execution_time_ms = duration_ms(started_at, completed_at)
        steps = [
            self._step(step, now, cleaner, (*loc, "steps", i)) for i, step in enumerate(data.steps)
        ]
        return {
            "id": new_id(),
            "tenant_id": self.tenant_id,
            "action_type": data.action_type,
            "action_name": data.action_name,
            "provider_name": data.provider_name,
            "service": data.service,
            "source": data.source,
            "user_id": data.user_id,
            "session_id": data.session_id,
            "correlation_id": data.correlation_id,
            "parent_id": data.parent_id,
            "status": data.status,
            "request_payload": cleaner.clean(data.request_payload, (*loc, "request_payload")),
            "response_data": cleaner.clean(data.response_data, (*loc, "response_data")),
            "metadata_": cleaner.clean(data.metadata, (*loc, "metadata")),
            "steps": steps,
            "error_message": data.error_message,
            "error_type": data.error_type,
            "execution_time_ms": execution_time_ms,
            "started_at": started_at,
            "completed_at": completed_at,
            "ip_address": data.ip_address,
            "user_agent": data.user_agent,
            "created_at": now,
            "updated_at": now,
        }

    @staticmethod
    def _step(step: StepCreate, now: datetime, cleaner: PayloadCleaner, loc: Loc) -> dict[str, Any]:
        return {
            "step": step.step,
            "status": step.status,
            "details": cleaner.clean(step.details, (*loc, "details")),
            "timestamp": _iso(step.timestamp or now),
        }

    # Lifecycle

    async def update(self, action: ActionLog, data: ActionUpdate) -> ActionRead:
        """Move a running action on; a final status completes it."""
        self._ensure_running(action)
        before = contribution(action)
        now = self.clock()
        given = data.model_fields_set
        cleaner = self._cleaner()
        if "response_data" in given:
            action.response_data = cleaner.clean(data.response_data, ("response_data",))
        if data.metadata is not None:
            added = cleaner.clean(data.metadata, ("metadata",))
            action.metadata_ = {**(action.metadata_ or {}), **added}
        cleaner.raise_errors()
        ends = data.completed_at
        if ends is not None and action.started_at is not None and ends < action.started_at:
            raise invalid(("body", "completed_at"), "completed_at must not be before started_at")
        for field in ("error_message", "error_type", "completed_at", "execution_time_ms"):
            if field in given:
                setattr(action, field, getattr(data, field))
        if data.status is not None:
            action.status = data.status
            if data.status in FINAL:
                action.completed_at = action.completed_at or _stamp_end(action.started_at, now)
                if data.execution_time_ms is None:
                    computed = duration_ms(action.started_at, action.completed_at)
                    if computed is not None:
                        action.execution_time_ms = computed
        action.updated_at = now
        await self.actions.flush()
        await self.actions.recount(before, action)
        await self.actions.announce(action)
        return ActionRead.model_validate(action)

    async def add_step(self, action: ActionLog, data: StepCreate) -> ActionRead:
        """Append one execution step to a running action."""
        self._ensure_running(action)
        if len(action.steps) >= MAX_STEPS:
            raise Conflict(f"action {action.id} already has {MAX_STEPS} steps")
        now = self.clock()
        cleaner = self._cleaner()
        step = self._step(data, now, cleaner, ())
        cleaner.raise_errors()
        action.steps = [*action.steps, step]
        action.updated_at = now
        await self.actions.flush()
        await self.actions.announce(action)
        return ActionRead.model_validate(action)

    @staticmethod
    def _ensure_running(action: ActionLog) -> None:
        if action.status in FINAL:
            raise Conflict(
                f"action {action.id} is already '{action.status}', a final status; "
                "a finished action cannot be changed"
            )

    # Queries

    async def get(self, action_id: UUID, *, for_update: bool = False) -> ActionLog:
        action = await self.actions.get(action_id, for_update=for_update)
        if action is None:
            raise NotFound(f"action {action_id} not found")
        return action

    async def page(
        self, f: ActionFilter, *, limit: int, order: Order, cursor: str | None, skip: int
    ) -> tuple[list[dict[str, Any]], Cursor | None]:
        """A page of summaries (ActionSummary's fields) and the next page's cursor (or None).

        With a cursor, `skip` is ignored: the cursor alone says where the page starts.
        """
        after = Cursor.decode(cursor) if cursor else None
        rows = await self.actions.list_summaries(
            f, limit=limit + 1, order=order, cursor=after, skip=0 if after else skip
        )
        page = rows[:limit]
        next_cursor = Cursor.of(page[-1]) if len(rows) > limit else None
        return [dict(zip(SUMMARY_FIELDS, row, strict=True)) for row in page], next_cursor

    async def recent_failures(self, minutes: int, limit: int) -> list[dict[str, Any]]:
        """Summaries of the failures of the last `minutes`, newest first."""
        since = self.clock() - timedelta(minutes=minutes)
        rows = await self.actions.recent_failures(since, limit)
        return [dict(zip(SUMMARY_FIELDS, row, strict=True)) for row in rows]
