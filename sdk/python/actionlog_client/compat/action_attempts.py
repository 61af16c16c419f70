"""The attempt logger: `ActionLogger().start_action_attempt(...)` returns an attempt
with `log_step`, `mark_success` and `mark_failure`.

    from actionlog_client.compat.action_attempts import ActionLogger
    action_logger = ActionLogger()
    attempt = action_logger.start_action_attempt(action_id="restart_db_001",
        action_type="restart_database_connection", parameters={...}, incident_id="inc_001")
    attempt.log_step("validation", "in_progress", {"checking": "connection_pool"})
    attempt.mark_success({"connection_pool_size": 10})

Mapping: `attempt_id` is the record's `id`; `action_id` → `action_name`; `action_type` →
`action_type`; `parameters` → `request_payload`; `incident_id` → `correlation_id` (so
`get_action_attempts_by_incident` is one filtered query); `log_step` → `steps`;
`mark_success(result)` → `response_data`; `mark_failure(error, details)` →
`error_message` and `metadata`. The first `mark_*` finishes the attempt (sent at once, or
merged into the start while it is queued); a second one is ignored with a warning, since a
finished record is never changed. `complete_action_attempt` is kept for the original flow.
"""

import logging
import time
from typing import Any

from actionlog_client._default import get_action_logger
from actionlog_client.logger import Action
from actionlog_client.logger import ActionLogger as CoreLogger

log = logging.getLogger("actionlog_client")


class ActionAttempt:
    def __init__(
        self,
        logger: CoreLogger,
        action_id: str,
        action_type: str,
        parameters: dict[str, Any] | None,
        incident_id: str | None,
    ) -> None:
        self.action_id = action_id
        self.action_type = action_type
        self.parameters = dict(parameters or {})
        self.incident_id = incident_id
        self.status = "in_progress"
        self.logs: list[dict[str, Any]] = []
        self.error_message: str | None = None
        self.result: dict[str, Any] | None = None
        self.started_at = time.time()
        self.execution_time_seconds: float | None = None
        self._action = Action(
            logger,
            action_type,
            {
                "action_name": action_id,
                "request_payload": self.parameters,
                "correlation_id": incident_id,
            },
            nest=False,  # marked by separate calls: not a block
        ).start()
        self.attempt_id = self._action.id

    def log_step(self, step: str, status: str, details: dict[str, Any] | None = None) -> None:
        self.logs.append({"step": step, "status": status, "details": dict(details or {})})
        self._action.step(step, status, details)

    def mark_success(self, result: dict[str, Any] | None = None) -> None:
        if self._finished():
            return
        self.status, self.result = "success", result
        self._action.complete(response_data=result)

    def mark_failure(self, error_message: str, details: dict[str, Any] | None = None) -> None:
        if self._finished():
            return
        self.status, self.error_message = "failed", error_message
        self._action.fail(error_message, metadata=dict(details or {}))

    def _finished(self) -> bool:
        if self.status != "in_progress":
            log.warning(
                "actionlog: attempt %s is already %s; this mark is ignored",
                self.attempt_id,
                self.status,
            )
            return True
        self.execution_time_seconds = round(time.time() - self.started_at, 3)
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempt_id": self.attempt_id,
            "action_id": self.action_id,
            "action_type": self.action_type,
            "parameters": self.parameters,
            "incident_id": self.incident_id,
            "status": self.status,
            "logs": list(self.logs),
            "error_message": self.error_message,
            "execution_time_seconds": self.execution_time_seconds,
        }


class ActionLogger:
    def __init__(self, logger: CoreLogger | None = None) -> None:
        self.logger = logger or get_action_logger()

    def start_action_attempt(
        self,
        action_id: str,
        action_type: str,
        parameters: dict[str, Any] | None = None,
        incident_id: str | None = None,
    ) -> ActionAttempt:
        return ActionAttempt(self.logger, action_id, action_type, parameters, incident_id)

    def complete_action_attempt(self, attempt: ActionAttempt) -> None:
        """The original logger saved the attempt here; the client already sent it. An attempt still
        running is left running (it can still be marked)."""
        if attempt.status == "in_progress":
            log.warning("actionlog: attempt %s completed while still running", attempt.attempt_id)

    def get_action_statistics(self, days_back: int = 7) -> dict[str, Any]:
        summary = self.logger.get_action_summary(days=days_back)
        by_type = {
            name: {
                "total": row["count"],
                "successful": row["completed"],
                "failed": row["failed"],
                "success_rate": row["success_rate"] or 0.0,
                "average_execution_time_seconds": row["average_duration_seconds"],
            }
            for name, row in summary["by_type"].items()
        }
        return {
            "days_back": days_back,
            "total_attempts": summary["total_actions"],
            "successful_attempts": summary["successful_actions"],
            "failed_attempts": summary["failed_actions"],
            "success_rate": summary["success_rate"] or 0.0,
            "average_execution_time_seconds": summary["average_duration_seconds"],
            "by_action_type": by_type,
        }

    def get_action_attempts_by_incident(self, incident_id: str) -> list[dict[str, Any]]:
        rows = self.logger.iter_actions(order="asc", correlation_id=incident_id)
        return [_attempt(r) for r in rows]  # in the order they were made

    def get_recent_attempts(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.logger.list_actions(limit=limit)
        return [_attempt(full) for r in rows if (full := self.logger.get_action(r["id"]))]


def _attempt(record: dict[str, Any]) -> dict[str, Any]:
    status = record.get("status")
    ms = record.get("execution_time_ms")
    return {
        "attempt_id": record.get("id"),
        "action_id": record.get("action_name"),
        "action_type": record.get("action_type"),
        "parameters": record.get("request_payload") or {},
        "incident_id": record.get("correlation_id"),
        "started_at": record.get("started_at"),
        "completed_at": record.get("completed_at"),
        "status": {"failure": "failed", "timeout": "failed"}.get(str(status), status),
        "logs": record.get("steps") or [],
        "error_message": record.get("error_message"),
        "result": record.get("response_data"),
        "execution_time_seconds": None if ms is None else ms / 1000,
    }
