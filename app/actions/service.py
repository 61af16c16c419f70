"""Rules for action logs after recording: idempotent writes, lifecycle, steps, queries.

Every write is prepared and written by a `Recorder` (app/actions/recorder.py): without an
`Idempotency-Key` through the worker's writer, which needs no session; with a key in the
request's session, together with its key (`record_once`).
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
from app.actions.recorder import PreparedRows, session_recorder
from app.actions.repository import ActionRepository, PageCursor
from app.actions.rollups import contribution
from app.actions.rows import RowBuilder, duration_ms, stamp_end
from app.actions.schemas import (
    MAX_STEPS,
    SUMMARY_FIELDS,
    ActionRead,
    ActionUpdate,
    Sort,
    StepCreate,
    duration_conflict,
)
from app.actions.statuses import FINAL
from app.core.errors import Conflict, NotFound, invalid
from app.core.idempotency import IdempotencyRepository, Written
from app.core.pagination import Cursor, DurationCursor, Order
from app.core.recording import record_once


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
        self.recorder = session_recorder(tenant_id, rows, session)

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.rows.clock

    # Recording with an idempotency key

    async def record_once(self, prepared: PreparedRows, idempotency_key: str) -> Written:
        """Store prepared rows once per key; a retry replays the first answer."""
        return await record_once(
            self.keys, idempotency_key, prepared, self.recorder.write, self.clock(), self.ttl_hours
        )

    # Lifecycle

    async def update(self, action: ActionLog, data: ActionUpdate) -> ActionRead:
        """Move a running action on; a final status completes it."""
        self._ensure_running(action)
        before = contribution(action)
        seen = self.actions.seen(action)
        now = self.clock()
        given = data.model_fields_set
        cleaner = self.rows.cleaner()
        if "response_data" in given:
            action.response_data = cleaner.clean(data.response_data, ("response_data",))
        if data.metadata is not None:
            added = cleaner.clean(data.metadata, ("metadata",))
            action.metadata_ = {**(action.metadata_ or {}), **added}
        cleaner.raise_errors()
        if self.rows.checks is not None:
            self._check_schema(action, given)
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
        await self.actions.renumber(action, seen)
        await self.actions.flush()
        await self.actions.recount(before, action)
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
        seen = self.actions.seen(action)
        action.steps = [*action.steps, step]
        action.updated_at = now
        await self.actions.renumber(action, seen)
        await self.actions.flush()
        return ActionRead.model_validate(action)

    def _check_schema(self, action: ActionLog, given: set[str]) -> None:
        """Check the parts the update changed against the type's schema (enforce: 422)."""
        assert self.rows.checks is not None
        changed = {"response_data": action.response_data} if "response_data" in given else {}
        if "metadata" in given and action.metadata_ is not None:
            changed["metadata"] = action.metadata_
        result = self.rows.checks.check_update(
            self.tenant_id, action.action_type, changed, action.schema_errors
        )
        if result is not None:
            action.schema_errors, action.schema_version = result

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

    async def descendants(self, action_id: UUID, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Summaries of the actions inside this one, at any depth (a span's whole subtree), in
        one query per level; at most `limit`, and whether there were more."""
        found: list[dict[str, Any]] = []
        seen = {action_id}
        frontier = [action_id]
        while frontier and len(found) <= limit:
            level = []
            for start in range(0, len(frontier), 1000):  # bounded IN lists
                rows = await self.actions.children_of(frontier[start : start + 1000], limit + 1)
                level += [dict(zip(SUMMARY_FIELDS, row, strict=True)) for row in rows]
            fresh = [row for row in level if row["id"] not in seen]
            seen.update(row["id"] for row in fresh)
            found += fresh
            frontier = [row["id"] for row in fresh]
        return found[:limit], len(found) > limit
