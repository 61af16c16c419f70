"""One causal timeline: what applications did (actions) and what changed (audit events) under
one `correlation_id`, merged in time order.

"user X updated deal → crm_update via hubspot failed after 245 ms → retry succeeded" reads as
one list. Both kinds are ordered by `created_at`, the service's time of recording (an action's
own `started_at` may come from a skewed client clock); ties put actions before audit events,
then go by id. A timeline holds at most `limit` entries, the oldest; `truncated` says that more
exist. It is a small domain of its own above actions and audits, which know nothing of it.
"""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from app.actions.filters import ActionFilter
from app.actions.service import ActionService
from app.audits.service import AuditService
from app.timeline.schemas import ActionEntry, AuditEntry

MAX_ENTRIES = 1000


@dataclass(frozen=True)
class Timeline:
    entries: list[ActionEntry | AuditEntry]
    truncated: bool


class TimelineService:
    def __init__(self, actions: ActionService, audits: AuditService, tenant_id: UUID) -> None:
        self.actions = actions
        self.audits = audits
        self.tenant_id = tenant_id

    async def of(self, correlation_id: str, limit: int = MAX_ENTRIES) -> Timeline:
        rows, more_actions = await self.actions.page(
            ActionFilter(correlation_id=correlation_id),
            limit=limit, order="asc", cursor=None, skip=0,
        )  # fmt: skip
        audit_rows = await self.audits.by_correlation(self.tenant_id, correlation_id, limit + 1)
        entries: list[ActionEntry | AuditEntry] = [ActionEntry(**row) for row in rows]
        entries += [AuditEntry.model_validate(row) for row in audit_rows[:limit]]
        entries.sort(key=_order)
        truncated = more_actions is not None or len(audit_rows) > limit or len(entries) > limit
        return Timeline(entries[:limit], truncated)


def _order(entry: ActionEntry | AuditEntry) -> tuple[Any, ...]:
    return (entry.created_at, entry.kind != "action", str(entry.id))
