"""Events as the client queues them, and the field mapping from the job logger's names.

An event is one request's worth of work: `action` (an item of `POST /actions/batch`, with its
client-made `id`), `update` (`PATCH /actions/{id}`), `step` (`POST /actions/{id}/steps`) or
`audit` (`POST /audits`). Bodies are plain JSON-ready dicts, built at call time, so the time
an action started or finished is the caller's time, not the time the batch left.

While an action's start is still queued, its updates and steps are merged into that start
(`merge_update`, `merge_step`): the service then receives one finished record instead of a
POST and a PATCH, and a PATCH is never sent for an id the service has not stored yet.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ACTION = "action"
UPDATE = "update"
STEP = "step"
AUDIT = "audit"

ALIASES = {"initiated": "pending", "completed": "success", "failed": "failure"}
FINAL = frozenset({"success", "failure", "timeout", "cancelled", "warning"})
JOB_LOGGER_SPELLING = {"pending": "initiated", "success": "completed", "failure": "failed"}

# Fields of PATCH /actions/{id}: what an update may carry.
UPDATE_FIELDS = frozenset(
    {
        "status",
        "response_data",
        "error_message",
        "error_type",
        "completed_at",
        "execution_time_ms",
        "metadata",
    }
)


@dataclass
class Event:
    kind: str
    body: dict[str, Any]
    target: str | None = None  # the action id (for every kind but audit)
    seq: int | None = None  # its row in the spool, once spooled
    attempts: int = 0
    maybe_sent: bool = False  # an attempt may have reached the service (timeout, reset)
    first_sent: float | None = None  # wall time of the first attempt
    not_found: int = 0  # 404s seen by a follow-up whose action is not stored yet

    def size(self) -> int:
        return 1


@dataclass
class Outcome:
    """What the service made of a group of events."""

    sent: list[Event] = field(default_factory=list)
    rejected: list[tuple[Event, Exception]] = field(default_factory=list)


def json_fallback(value: Any) -> Any:
    """JSON for what json cannot encode: datetimes as ISO 8601 (UTC when naive), the rest
    as lists or text."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)  # UUID, Decimal, Path, enums, anything else: its text


def canonical_status(status: str) -> str:
    lowered = status.strip().lower()
    return ALIASES.get(lowered, lowered)


def utc_iso(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def as_json_time(value: Any) -> Any:
    return utc_iso(value) if isinstance(value, datetime) else value


def seconds_to_ms(seconds: float | int | None) -> int | None:
    if seconds is None:
        return None
    return max(0, min(2**31 - 1, round(float(seconds) * 1000)))


def job_logger_fields(
    *,
    result_message: str | None = None,
    action_details: dict[str, Any] | None = None,
    job_id: str | None = None,
    job_execution_id: str | None = None,
    duration_seconds: float | None = None,
) -> dict[str, Any]:
    """The job logger's field names as the service's (the table in the README).

    `action_details` is the free-form `metadata`; `result_message` goes to `response_data`
    as `{"result_message": …}`; `job_execution_id` is the `correlation_id` (it groups what
    one run did) and `job_id` is kept in `metadata`; `duration_seconds` becomes
    `execution_time_ms`. An `error_type` inside `action_details` (the job logger's way of naming
    the exception) is also set as the record's `error_type`.
    """
    out: dict[str, Any] = {}
    metadata: dict[str, Any] = dict(action_details or {})
    if job_id is not None:
        metadata["job_id"] = str(job_id)
    if metadata:
        out["metadata"] = metadata
        if isinstance(metadata.get("error_type"), str):
            out["error_type"] = metadata["error_type"][:255]
    if result_message is not None:
        out["response_data"] = {"result_message": result_message}
    if job_execution_id is not None:
        out["correlation_id"] = str(job_execution_id)
    if duration_seconds is not None:
        out["execution_time_ms"] = seconds_to_ms(duration_seconds)
    return out


def clean(fields: dict[str, Any]) -> dict[str, Any]:
    """Drop None values and render datetimes and UUIDs as the API expects."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            value = utc_iso(value)
        elif name in ("parent_id", "id") and not isinstance(value, str):
            value = str(value)
        out[name] = value
    return out


def action_body(action_id: str, action_type: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A create body; running actions get `started_at` and final ones `completed_at` now."""
    body = clean(fields)
    body["id"] = action_id
    body["action_type"] = action_type
    status = canonical_status(str(body.get("status", "success")))
    body["status"] = status
    now = utc_iso()
    if status in FINAL:
        body.setdefault("completed_at", now)
    else:
        body.setdefault("started_at", now)
    return body


def update_body(fields: dict[str, Any]) -> dict[str, Any]:
    body = clean(fields)
    unknown = set(body) - UPDATE_FIELDS
    if unknown:
        raise TypeError(f"an update cannot change {', '.join(sorted(unknown))}")
    if "status" in body:
        body["status"] = canonical_status(str(body["status"]))
        if body["status"] in FINAL:
            body.setdefault("completed_at", utc_iso())
    return body


def merge_update(create: dict[str, Any], update: dict[str, Any]) -> None:
    """Apply an update to a start that is still queued, as the service's PATCH would."""
    for name, value in update.items():
        if name == "metadata":
            create["metadata"] = {**(create.get("metadata") or {}), **value}
        else:
            create[name] = value
    if create.get("status") in FINAL and "completed_at" not in create:
        create["completed_at"] = utc_iso()


def step_body(
    step: str, status: str, details: dict[str, Any] | None, timestamp: datetime | None
) -> dict[str, Any]:
    # The timestamp is always set here: it is the step's time, and it identifies the step
    # when a retried POST has to check whether the first attempt got through.
    return {
        "step": step,
        "status": status,
        "details": dict(details or {}),
        "timestamp": utc_iso(timestamp),
    }


def merge_step(create: dict[str, Any], step: dict[str, Any]) -> None:
    create.setdefault("steps", []).append(step)


def is_final_update(event: Event) -> bool:
    return event.kind == UPDATE and event.body.get("status") in FINAL
