"""Response bodies of the `/action-logs` routes, in the in-process action log's own shapes."""

from typing import Any

from pydantic import BaseModel, Field


class LoggedAction(BaseModel):
    timestamp: str = Field(description="When the action was recorded (ISO 8601, UTC)")
    service: str | None
    action: str = Field(description="action_name, else action_type")
    status: str = Field(description="`failed` for failure and timeout, else the status")
    duration: int | None = Field(description="execution_time_ms (null when not timed)")
    error: str | None


class LoggedActions(BaseModel):
    actions: list[LoggedAction]


class ActionLogStats(BaseModel):
    stats: dict[str, Any] = Field(description="`total`, `failed` and `byService`")


class Cleared(BaseModel):
    message: str
    deleted: int = Field(description="Actions deleted (the purge is in the audit trail)")
