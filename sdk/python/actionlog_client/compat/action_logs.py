"""Seed 002's logging API: `log_action(service, action, status, duration, error=None)`.

    from actionlog_client.compat.action_logs import log_action
    log_action("CaseService", "createCase", "success", 45)

Mapping: `service` → `service`, `action` → `action_type` and `action_name`, `status`
`success`/`failed` → `success`/`failure`, `duration` (milliseconds) → `execution_time_ms`,
`error` → `error_message`. The readers return seed 002's `ActionLog` dicts (`timestamp`,
`service`, `action`, `status` as `success`/`failed`, `duration`, `error`), newest first,
from the caller's tenant; `get_action_stats()` returns `{"total", "failed", "byService"}`.
Clearing the logs is an operator's act on the service (`actionlog prune`, or seed 002's
`POST /action-logs/clear` with an `admin` key), not a function of the client.
"""

from typing import Any

from actionlog_client._default import get_action_logger
from actionlog_client.logger import ActionLogger

_logger: ActionLogger | None = None


def configure(logger: ActionLogger | None) -> None:
    """Send through `logger` (None: the environment's default logger)."""
    global _logger
    _logger = logger


def _current() -> ActionLogger:
    return _logger or get_action_logger()


def log_action(
    service: str, action: str, status: str, duration: int | float, error: str | None = None
) -> None:
    """Record one finished service action (`duration` in milliseconds)."""
    _current().log(
        action,
        action_name=action,
        service=service,
        status=status,
        execution_time_ms=max(0, round(duration)) if duration is not None else None,
        error_message=error,
    )


def _shape(record: dict[str, Any]) -> dict[str, Any]:
    status = record.get("status")
    return {
        "timestamp": record.get("created_at"),
        "service": record.get("service"),
        "action": record.get("action_name") or record.get("action_type"),
        "status": "failed" if status in ("failure", "timeout") else status,
        "duration": record.get("execution_time_ms") or 0,
        "error": record.get("error_message"),
    }


def get_recent_actions(limit: int = 100) -> list[dict[str, Any]]:
    return [_shape(r) for r in _current().list_actions(limit=limit)]


def get_failed_actions(limit: int = 50) -> list[dict[str, Any]]:
    rows = _current().list_actions(limit=limit, status=["failure", "timeout"])
    return [_shape(r) for r in rows]


def get_actions_by_service(service: str, limit: int = 100) -> list[dict[str, Any]]:
    return [_shape(r) for r in _current().list_actions(limit=limit, service=service)]


def get_action_stats() -> dict[str, Any]:
    stats = _current().get_stats()
    return {
        "total": stats.get("total_actions", 0),
        "failed": stats.get("failed_actions", 0),
        "byService": dict(stats.get("by_service") or {}),
    }
