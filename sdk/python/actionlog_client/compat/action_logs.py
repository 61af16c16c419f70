"""The in-process action log's API: `log_action(service, action, status, duration, error=None)`.

    from actionlog_client.compat.action_logs import log_action
    log_action("CaseService", "createCase", "success", 45)

Mapping: `service` → `service`, `action` → `action_type` and `action_name`, `status`
`success`/`failed` → `success`/`failure`, `duration` (milliseconds) → `execution_time_ms`,
`error` → `error_message`.

The readers call the service's own `/action-logs` routes (`/action-logs/recent`, `/failed`,
`/service/{service}`, `/stats`) and return their `actions` lists: the in-process log's `ActionLog`
dicts (`timestamp`, `service`, `action`, `status` with `failed` for failure and timeout,
`duration`, `error`), newest first, from the caller's tenant. `get_action_stats()` returns
`{"total", "failed", "byService"}`; `clear_action_logs()` is `POST /action-logs/clear` (an
`admin` key; the purge is audited).
"""

from typing import Any
from urllib.parse import quote

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


def _actions(path: str, limit: int) -> list[dict[str, Any]]:
    answer = _current()._get(f"/action-logs/{path}", {"limit": limit}, default={})
    return list(answer.get("actions") or [])


def get_recent_actions(limit: int = 100) -> list[dict[str, Any]]:
    return _actions("recent", limit)


def get_failed_actions(limit: int = 50) -> list[dict[str, Any]]:
    return _actions("failed", limit)


def get_actions_by_service(service: str, limit: int = 100) -> list[dict[str, Any]]:
    return _actions(f"service/{quote(service, safe='')}", limit)


def get_action_stats() -> dict[str, Any]:
    empty = {"stats": {"total": 0, "failed": 0, "byService": {}}}
    return dict(_current()._get("/action-logs/stats", {}, default=empty)["stats"])


def clear_action_logs() -> dict[str, Any] | None:
    """Delete the tenant's action logs (needs a key with the `admin` scope; the service
    records the purge in the audit trail). None when the service refused or was unreachable
    (reported to `on_error`; raised with `strict=True`)."""
    answer = _current()._post("/action-logs/clear")
    return dict(answer) if isinstance(answer, dict) else None
