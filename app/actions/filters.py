"""The filters shared by listing, export and statistics, as plain data.

Time ranges are half-open: `since` is included, `until` is not.
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True)
class ActionFilter:
    action_types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    service: str | None = None
    source: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    correlation_id: str | None = None
    parent_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_duration_ms: int | None = None
    max_duration_ms: int | None = None
    q: str | None = None
