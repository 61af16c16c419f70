"""The `ActivityLogger` facade: one logger per user session, long operations with
`start_operation` / `complete_operation(success, details, error)`.

    from actionlog_client.compat.activity_logger import ActivityLogger
    activity_logger = ActivityLogger(session_id=request_session_id)
    activity_logger.start_operation("s3_export", {"files": 11})
    activity_logger.complete_operation(success=True, details={"uploaded": 11})

Mapping: the session → `session_id` (a new one when none is given), the activity's `action`
→ `action_type`, `details` → `metadata`, `error` → `error_message`, `success`/`failed` →
`success`/`failure`; an operation's duration is measured from `start_operation`. Operations
nest: `complete_operation` finishes the most recently started one. `get_summary()` has
the ActivityLogger's fields (`success_rate` in percent, `session_duration` in minutes,
`action_breakdown` by the first word of the action).
"""

import json
import logging
import threading
import time
import uuid
from typing import Any

from actionlog_client._default import get_action_logger
from actionlog_client.logger import Action, ActionLogger

log = logging.getLogger("actionlog_client")

_STATUS = {"failed": "failure", "error": "failure"}


class ActivityLogger:
    def __init__(
        self,
        session_id: str | None = None,
        *,
        user_id: str | None = None,
        logger: ActionLogger | None = None,
    ) -> None:
        self.session_id = session_id or uuid.uuid4().hex
        self.user_id = user_id
        self.logger = logger or get_action_logger()
        self.started = time.time()
        self._operations: list[Action] = []
        self._lock = threading.Lock()

    # Recording

    def log_activity(
        self,
        action: str,
        status: str = "success",
        details: dict[str, Any] | None = None,
        error: str | None = None,
        *,
        duration_seconds: float | None = None,
        **fields: Any,
    ) -> str:
        return self.logger.log(
            action,
            status=_STATUS.get(status, status),
            session_id=self.session_id,
            user_id=self.user_id,
            metadata=dict(details or {}),
            error_message=error,
            execution_time_ms=None if duration_seconds is None else round(duration_seconds * 1000),
            **fields,
        )

    def start_operation(self, action: str, details: dict[str, Any] | None = None) -> str:
        """Start a long operation; returns its id."""
        operation = Action(
            self.logger,
            action,
            {
                "session_id": self.session_id,
                "user_id": self.user_id,
                "metadata": dict(details or {}),
            },
            nest=False,  # started and completed by separate calls: not a block
        ).start()
        with self._lock:
            self._operations.append(operation)
        return operation.id

    def complete_operation(
        self,
        success: bool = True,
        details: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> str | None:
        """Finish the most recent operation; returns its id (None when none is running)."""
        with self._lock:
            operation = self._operations.pop() if self._operations else None
        if operation is None:
            log.warning("actionlog: complete_operation without a started operation")
            return None
        fields: dict[str, Any] = {"metadata": dict(details or {})}
        if success:
            operation.complete(**fields)
        else:
            operation.fail(error, **fields)
        return operation.id

    def log_s3_operation(
        self,
        operation: str,
        success: bool,
        details: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> str:
        return self._outcome(f"s3_{operation}", success, details, error, provider_name="s3")

    def log_document_upload(
        self, filename: str, file_size_bytes: int, success: bool = True, error: str | None = None
    ) -> str:
        details = {
            "filename": filename,
            "file_size_bytes": file_size_bytes,
            "file_size_mb": round(file_size_bytes / 1_000_000, 2),
        }
        return self._outcome("document_upload", success, details, error)

    def log_ai_analysis(
        self,
        section: str,
        feedback_generated: int,
        analysis_duration_seconds: float,
        success: bool = True,
        error: str | None = None,
    ) -> str:
        details = {
            "section": section,
            "feedback_generated": feedback_generated,
            "analysis_duration_seconds": analysis_duration_seconds,
        }
        return self._outcome(
            "ai_analysis", success, details, error, duration_seconds=analysis_duration_seconds
        )

    def log_feedback_action(
        self, accepted: bool, feedback_id: str, section: str, feedback_preview: str = ""
    ) -> str:
        details = {
            "feedback_id": feedback_id,
            "section": section,
            "feedback_preview": feedback_preview[:100],
        }
        action = "feedback_accepted" if accepted else "feedback_rejected"
        return self._outcome(action, True, details, None)

    def log_chat_interaction(
        self, message_type: str, message_length: int, response_time_seconds: float
    ) -> str:
        details = {
            "message_type": message_type,
            "message_length": message_length,
            "response_time_seconds": response_time_seconds,
        }
        return self._outcome(
            "chat_interaction", True, details, None, duration_seconds=response_time_seconds
        )

    def log_export_operation(
        self,
        export_type: str,
        success: bool,
        details: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> str:
        return self._outcome(
            "export_operation", success, {"export_type": export_type, **(details or {})}, error
        )

    def _outcome(
        self,
        action: str,
        success: bool,
        details: dict[str, Any] | None,
        error: str | None,
        **fields: Any,
    ) -> str:
        return self.log_activity(
            action, "success" if success else "failed", details, error, **fields
        )

    # Reading (this session's activities)

    def get_activities(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.logger.list_actions(limit=limit, session_id=self.session_id)
        return [_shape(r) for r in rows]

    def get_failed_activities(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.logger.list_actions(
            limit=limit, session_id=self.session_id, status=["failure", "timeout"]
        )
        return [_shape(r) for r in rows]

    def get_summary(self) -> dict[str, Any]:
        stats = self.logger.get_stats(session_id=self.session_id)
        total = stats.get("total_actions", 0)
        success = stats.get("successful_actions", 0)
        breakdown: dict[str, int] = {}
        for action_type, count in (stats.get("actions_by_type") or {}).items():
            category = action_type.split("_", 1)[0]
            breakdown[category] = breakdown.get(category, 0) + count
        return {
            "session_id": self.session_id,
            "total_activities": total,
            "success_count": success,
            "failed_count": stats.get("failed_actions", 0),
            "success_rate": round(100 * success / total, 1) if total else 0.0,
            "session_duration": round((time.time() - self.started) / 60, 1),
            "action_breakdown": breakdown,
        }

    def export_json(self) -> str:
        """The session's activities and summary as JSON (the ActivityLogger's JSON format)."""
        return json.dumps(
            {"summary": self.get_summary(), "activities": self.get_activities(limit=1000)},
            default=str,
        )


def _shape(record: dict[str, Any]) -> dict[str, Any]:
    status = record.get("status")
    ms = record.get("execution_time_ms")
    return {
        "id": record.get("id"),
        "timestamp": record.get("created_at"),
        "action": record.get("action_type"),
        "status": "failed" if status in ("failure", "timeout") else status,
        "error": record.get("error_message"),
        "duration_seconds": None if ms is None else ms / 1000,
    }
