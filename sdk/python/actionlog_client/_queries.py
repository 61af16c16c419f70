"""Reads, shared by the sync and the async logger: which request to make, and how to shape
its answer in the job logger's terms.

Every read first flushes what the logger has queued (bounded by its `timeout`), so code that
records and then reads, as hand-built loggers did with synchronous writes, sees its own records.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from actionlog_client._events import JOB_LOGGER_SPELLING, canonical_status

ACTIONS = "/api/v1/logs/actions"
STATS = "/api/v1/logs/stats"

FILTERS = frozenset(
    {
        "action_type",
        "status",
        "provider_name",
        "service",
        "source",
        "user_id",
        "session_id",
        "correlation_id",
        "parent_id",
        "since",
        "until",
        "min_duration_ms",
        "max_duration_ms",
        "q",
        "order",
        "cursor",
    }
)


def _param(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, list | tuple):
        return [_param(v) for v in value]
    return str(value)


def params(filters: dict[str, Any]) -> dict[str, Any]:
    unknown = set(filters) - FILTERS - {"limit"}
    if unknown:
        raise TypeError(f"unknown filter(s): {', '.join(sorted(unknown))}")
    return {name: _param(value) for name, value in filters.items() if value is not None}


def job_logger_filters(
    *,
    action_type: str | None,
    status: str | None,
    source: str | None,
    user_id: str | None,
    job_execution_id: str | None,
    limit: int,
    extra: dict[str, Any],
) -> dict[str, Any]:
    return params(
        {
            "action_type": action_type,
            "status": status,
            "source": source,
            "user_id": user_id,
            "correlation_id": job_execution_id,
            "limit": max(1, min(1000, int(limit))),
            **extra,
        }
    )


def since_days(days: float) -> str:
    return str(_param(datetime.now(UTC) - timedelta(days=days)))


def job_logger_record(record: dict[str, Any]) -> dict[str, Any]:
    """A service record with the job logger's names added (the service's own names are kept)."""
    metadata = dict(record.get("metadata") or {})
    response = record.get("response_data")
    if isinstance(response, dict):
        result_message = response.get("result_message")
    else:
        result_message = response if isinstance(response, str) else None
    milliseconds = record.get("execution_time_ms")
    status = str(record.get("status", ""))
    return {
        **record,
        "status": JOB_LOGGER_SPELLING.get(status, status),
        "action_timestamp": record.get("started_at") or record.get("created_at"),
        "duration_seconds": None if milliseconds is None else milliseconds / 1000,
        "result_message": result_message,
        "action_details": metadata,
        "job_id": metadata.get("job_id"),
        "job_execution_id": record.get("correlation_id"),
    }


def _seconds(milliseconds: float | None) -> float | None:
    return None if milliseconds is None else round(milliseconds / 1000, 3)


def job_logger_summary(stats: dict[str, Any], days: float) -> dict[str, Any]:
    """`get_action_summary`: the service's statistics, with the job logger's names beside them."""
    by_type = {
        name: {
            "count": row["count"],
            "completed": row["successful"],
            "failed": row["failures"],
            "success_rate": row["success_rate"],
            "average_duration_seconds": _seconds(row["average_execution_time_ms"]),
        }
        for name, row in (stats.get("by_type") or {}).items()
    }
    return {
        **stats,
        "days": days,
        "completed_actions": stats.get("successful_actions", 0),
        "average_duration_seconds": _seconds(stats.get("average_execution_time_ms")),
        "by_type": by_type,
        "by_status": {
            JOB_LOGGER_SPELLING.get(k, k): v for k, v in (stats.get("by_status") or {}).items()
        },
    }


def empty_stats() -> dict[str, Any]:
    return {
        "total_actions": 0,
        "successful_actions": 0,
        "failed_actions": 0,
        "average_execution_time_ms": None,
        "actions_by_type": {},
        "actions_by_provider": {},
        "success_rate": None,
        "by_status": {},
        "by_source": {},
        "by_service": {},
        "by_type": {},
    }


def is_failed(status: str) -> bool:
    return canonical_status(status) in ("failure", "timeout")
