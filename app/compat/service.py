"""The in-process action log's API (`/action-logs/*`) over the service's own actions.

That log kept the last 1000 actions of one process in memory; here the same five calls read
and purge the caller's tenant's stored actions. Listings are the action list (newest first,
through the same repository), statistics come from the rollups, and `clear` is the retention
prune (archived first, rollups kept exact, the purge written to the tenant's audit trail).
"""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from app.actions.filters import ActionFilter
from app.actions.service import ActionService
from app.actions.statuses import FAILED
from app.compat.schemas import ActionLogStats, Cleared, LoggedAction, LoggedActions
from app.core.auth import Actor
from app.core.db import utcnow
from app.retention.service import Pruner
from app.stats.service import StatsService

CLEARED = "Action logs cleared successfully"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def logged(row: dict[str, Any]) -> LoggedAction:
    return LoggedAction(
        timestamp=_iso(row["created_at"]),
        service=row["service"],
        action=row["action_name"] or row["action_type"],
        status="failed" if row["status"] in FAILED else row["status"],
        duration=row["execution_time_ms"],
        error=row["error_message"],
    )


class ActionLogsCompat:
    def __init__(self, actions: ActionService, stats: StatsService) -> None:
        self.actions = actions
        self.stats = stats

    async def listed(self, f: ActionFilter, limit: int) -> LoggedActions:
        rows, _ = await self.actions.page(f, limit=limit, order="desc", cursor=None, skip=0)
        return LoggedActions(actions=[logged(row) for row in rows])

    async def recent(self, limit: int) -> LoggedActions:
        return await self.listed(ActionFilter(), limit)

    async def failed(self, limit: int) -> LoggedActions:
        return await self.listed(ActionFilter(statuses=FAILED), limit)

    async def of_service(self, service: str, limit: int) -> LoggedActions:
        return await self.listed(ActionFilter(service=service), limit)

    async def summary(self) -> ActionLogStats:
        stats = await self.stats.summary(ActionFilter())
        return ActionLogStats(
            stats={
                "total": stats.total_actions,
                "failed": stats.failed_actions,
                "byService": stats.by_service,
            }
        )


async def clear(pruner: Pruner, tenant_id: UUID, actor: Actor) -> Cleared:
    """Delete every action the tenant has recorded so far (not the audit trail).

    It is the retention prune with a cutoff of now: archived first unless ARCHIVE=false.
    """
    before = utcnow() + timedelta(microseconds=1)
    purged = await pruner.prune(tenant_id, "actions", before, actor)
    return Cleared(message=CLEARED, deleted=purged.deleted)
