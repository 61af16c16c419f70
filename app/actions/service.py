"""Rules for action logs after recording: idempotent writes, lifecycle, steps, queries.

Writes without an `Idempotency-Key` go through `Recorder` (app/actions/recorder.py), which
needs no session. A write with a key commits in the request's session, together with its key.
A running action (`pending`, `in_progress`, `retry`) is moved on by `PATCH`; reaching a final
status stamps `completed_at` and computes `execution_time_ms` from `started_at` unless the
caller gave them. A record in a final status is never changed again.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.filters import ActionFilter
from app.actions.models import ActionLog
from app.actions.recorder import Prepared, Recorder, SessionStore
from app.actions.repository import ActionRepository, PageCursor
from app.actions.rollups import contribution
from app.actions.rows import RowBuilder, duration_ms, stamp_end
from app.actions.schemas import (
    MAX_STEPS,
    SUMMARY_FIELDS,
    ActionCreate,
    ActionRead,
    ActionUpdate,
    Sort,
    StepCreate,
    duration_conflict,
)
from app.actions.statuses import FINAL
from app.core.errors import Conflict, NotFound, invalid
from app.core.idempotency import IdempotencyGuard, IdempotencyRepository, Written, request_hash
from app.core.pagination import Cursor, DurationCursor, Order


class ActionService:
    """The action logs of one tenant, in a session (the request's)."""

    def __init__(
        self, session: AsyncSession, tenant_id: UUID, rows: RowBuilder, idempotency_ttl_hours: int
    ) -> None:
        self.tenant_id = tenant_id
        self.rows = rows
        self.ttl_hours = idempotency_ttl_hours
        self.actions = ActionRepository(session, tenant_id)
        self.keys = IdempotencyRepository(session, tenant_id)
        self.recorder = Recorder(tenant_id, rows, SessionStore(session))

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.rows.clock

    # Recording with an idempotency key

    async def record(self, data: ActionCreate, idempotency_key: str) -> Written:
        """Store one action once per key; a retry replays the first answer."""
        return await self._record_once(
            idempotency_key, "create", [data], lambda: self.recorder.prepare(data)
        )

    async def record_batch(self, items: list[ActionCreate], idempotency_key: str) -> Written:
        """Store every item or none, once per key."""
        return await self._record_once(
            idempotency_key, "batch", items, lambda: self.recorder.prepare_batch(items)
        )

    async def _record_once(
        self,
        key: str,
        operation: str,
        items: list[ActionCreate],
        prepare: Callable[[], Prepared],
    ) -> Written:
        fingerprint = request_hash(operation, [item.model_dump(mode="json") for item in items])
        guard = IdempotencyGuard(self.keys, key, fingerprint, self.clock(), self.ttl_hours)
        if (previous := await guard.previous()) is not None:
            return previous
        prepared = prepare()
        if (winner := await guard.claim(prepared.written)) is not None:
            return winner
        return await self.recorder.write(prepared)

    # Lifecycle

    async def update(self, action: ActionLog, data: ActionUpdate) -> ActionRead:
        """Move a running action on; a final status completes it."""
        self._ensure_running(action)
        before = contribution(action)
        now = self.clock()
        given = data.model_fields_set
        cleaner = self.rows.cleaner()
        if "response_data" in given:
            action.response_data = cleaner.clean(data.response_data, ("response_data",))
        if data.metadata is not None:
            added = cleaner.clean(data.metadata, ("metadata",))
            action.metadata_ = {**(action.metadata_ or {}), **added}
        cleaner.raise_errors()
        ends = data.completed_at
        if ends is not None and action.started_at is not None and ends < action.started_at:
            raise invalid(("body", "completed_at"), "completed_at must not be before started_at")
        self._check_duration(action, data)
        for field in ("error_message", "error_type", "completed_at", "execution_time_ms"):
            if field in given:
                setattr(action, field, getattr(data, field))
        if action.error_message is not None and "error_message" in given:
            action.error_message = self.rows.rules.redactor.scrub(action.error_message)
        if data.status is not None:
            action.status = data.status
            if data.status in FINAL:
                action.completed_at = action.completed_at or stamp_end(action.started_at, now)
                if data.execution_time_ms is None:
                    computed = duration_ms(action.started_at, action.completed_at)
                    if computed is not None:
                        action.execution_time_ms = computed
        action.updated_at = now
        await self.actions.flush()
        await self.actions.recount(before, action)
        await self.actions.announce(action)
        return ActionRead.model_validate(action)

    @staticmethod
    def _check_duration(action: ActionLog, data: ActionUpdate) -> None:
        """A duration given with a `completed_at` must agree with it and the stored start.

        Without a `completed_at` the end is the server's clock, and often the start was too:
        a client that reports how long its work took, later, contradicts neither.
        """
        given, started, ends = data.execution_time_ms, action.started_at, data.completed_at
        if given is None or started is None or ends is None:
            return
        if (problem := duration_conflict(started, ends, given)) is not None:
            raise invalid(("body", "execution_time_ms"), problem)

    async def add_step(self, action: ActionLog, data: StepCreate) -> ActionRead:
        """Append one execution step to a running action."""
        self._ensure_running(action)
        if len(action.steps) >= MAX_STEPS:
            raise Conflict(f"action {action.id} already has {MAX_STEPS} steps")
        now = self.clock()
        cleaner = self.rows.cleaner()
        step = self.rows.step(data, now, cleaner, ())
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
        self,
        f: ActionFilter,
        *,
        limit: int,
        order: Order,
        cursor: str | None,
        skip: int,
        sort: Sort = "created_at",
    ) -> tuple[list[dict[str, Any]], PageCursor | None]:
        """A page of summaries (ActionSummary's fields) and the next page's cursor (or None).

        With a cursor, `skip` is ignored: the cursor alone says where the page starts. Sorted
        by `execution_time_ms`, only timed actions are listed (slowest first with `desc`).
        """
        codec = DurationCursor if sort == "execution_time_ms" else Cursor
        after = codec.decode(cursor) if cursor else None
        rows = await self.actions.list_summaries(
            f, limit=limit + 1, order=order, cursor=after, skip=0 if after else skip, sort=sort
        )
        page = rows[:limit]
        next_cursor = codec.of(page[-1]) if len(rows) > limit else None
        return [dict(zip(SUMMARY_FIELDS, row, strict=True)) for row in page], next_cursor

    async def recent_failures(self, minutes: int, limit: int) -> list[dict[str, Any]]:
        """Summaries of the failures of the last `minutes`, newest first."""
        since = self.clock() - timedelta(minutes=minutes)
        rows = await self.actions.recent_failures(since, limit)
        return [dict(zip(SUMMARY_FIELDS, row, strict=True)) for row in rows]
