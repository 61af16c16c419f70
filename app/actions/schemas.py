"""Request and response bodies of the action-log API.

String limits come from the columns of `ActionLog`, so a value that would not fit is refused
with a 422 naming the field instead of failing at the database. Timestamps without a timezone
are read as UTC, and must lie in the accepted range (app/core/inputs.py).

Each write body carries an example that Swagger UI's "Try it out" sends as it is: no fixed id,
no fixed date, a duration without times to contradict it, so that a click records a sane row.

A duration may differ from `completed_at - started_at` by at most DURATION_TOLERANCE_MS plus
DURATION_TOLERANCE_SHARE of that span: a client times its work with its own clock, and its
timestamps and its stopwatch rarely agree to the millisecond, but a duration outside that
margin is a mistake that would skew every average it joins (one such row moved a tenant's
average from ~1.3 s to ~6,800 s), so it is refused with a 422 naming the three fields.
"""

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Body
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import String

from app.actions.models import action_logs
from app.actions.statuses import Status, StatusIn
from app.core.inputs import Int32
from app.core.inputs import Text as Text  # re-exported: other domains' schemas use it
from app.core.inputs import UtcDatetime as UtcDatetime

MAX_BATCH = 1000
Sort = Literal["created_at", "execution_time_ms"]  # the orders a listing can take
MAX_STEPS = 1000
DURATION_TOLERANCE_MS = 1000
DURATION_TOLERANCE_SHARE = 0.1


def fits(column: str, min_length: int = 0) -> StringConstraints:
    """A string constraint matching the length of an `action_logs` column."""
    column_type = action_logs.c[column].type
    assert isinstance(column_type, String), f"{column} is a string column"
    length = column_type.length
    return StringConstraints(min_length=min_length, max_length=length)


JsonObject = dict[str, Any]
Milliseconds = Int32
ACTION_EXAMPLE: JsonObject = {
    "action_type": "crm_create",
    "action_name": "Create contact",
    "provider_name": "hubspot",
    "service": "CrmAdapter",
    "source": "api",
    "user_id": "u-42",
    "status": "success",
    "request_payload": {"email": "ada@example.com", "lifecyclestage": "lead"},
    "response_data": {"id": "4812"},
    "metadata": {"attempt": 1},
    "execution_time_ms": 240,
}


def duration_conflict(started: datetime, completed: datetime, given_ms: int) -> str | None:
    """Why `given_ms` contradicts the times it comes with, or None when it agrees with them."""
    span_ms = (completed - started) / timedelta(milliseconds=1)
    if abs(given_ms - span_ms) <= DURATION_TOLERANCE_MS + DURATION_TOLERANCE_SHARE * span_ms:
        return None
    return (
        f"execution_time_ms ({given_ms}) contradicts completed_at - started_at "
        f"({round(span_ms)} ms): they may differ by at most {DURATION_TOLERANCE_MS} ms "
        f"plus {DURATION_TOLERANCE_SHARE:.0%} of the span"
    )


class StepCreate(BaseModel):
    """One step of a long action."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"step": "upload", "status": "done", "details": {"bytes": 1048576}}]
        },
    )

    step: Annotated[Text, StringConstraints(min_length=1, max_length=255)]
    status: Annotated[Text, StringConstraints(min_length=1, max_length=50)]
    details: JsonObject = Field(default_factory=dict)
    timestamp: UtcDatetime | None = Field(default=None, description="Defaults to now")


class ActionStep(BaseModel):
    step: str
    status: str
    details: JsonObject
    timestamp: datetime


class ActionCreate(BaseModel):
    """One action to record. Only `action_type` is required."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ACTION_EXAMPLE]})

    id: UUID | None = Field(
        default=None,
        description=(
            "Optional client-generated id (a UUID; UUIDv7 keeps the index ordered). Sending "
            "the same id with the same body again is a replay that stores nothing new "
            "(`Idempotent-Replayed: true`); the same id with another body is a 409"
        ),
    )
    action_type: Annotated[Text, fits("action_type", 1)]
    action_name: Annotated[Text, fits("action_name")] | None = None
    provider_name: Annotated[Text, fits("provider_name")] | None = None
    service: Annotated[Text, fits("service")] | None = None
    source: Annotated[Text, fits("source")] | None = None
    user_id: Annotated[Text, fits("user_id")] | None = None
    session_id: Annotated[Text, fits("session_id")] | None = None
    correlation_id: Annotated[Text, fits("correlation_id")] | None = None
    parent_id: UUID | None = None
    status: StatusIn = Field(
        default="success",
        description="Also accepts the aliases initiated, completed and failed",
    )
    request_payload: JsonObject = Field(default_factory=dict)
    response_data: Any = None
    metadata: JsonObject = Field(default_factory=dict)
    steps: Annotated[list[StepCreate], Field(max_length=MAX_STEPS)] = Field(default_factory=list)
    error_message: Text | None = None
    error_type: Annotated[Text, fits("error_type")] | None = None
    execution_time_ms: Milliseconds | None = Field(
        default=None, description="Computed from started_at and completed_at when absent"
    )
    started_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    ip_address: Annotated[Text, fits("ip_address")] | None = None
    user_agent: Annotated[Text, fits("user_agent")] | None = None

    @field_validator("parent_id")
    @classmethod
    def _not_own_parent(cls, value: UUID | None, info: ValidationInfo) -> UUID | None:
        if value is not None and value == info.data.get("id"):
            raise PydanticCustomError(
                "own_parent", "parent_id must not be the action's own id (the id field)"
            )
        return value

    @field_validator("completed_at")
    @classmethod
    def _not_before_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        started = info.data.get("started_at")
        if value is not None and started is not None and value < started:
            raise ValueError("completed_at must not be before started_at")
        given = info.data.get("execution_time_ms")
        if value is None or started is None or given is None:
            return value
        if (problem := duration_conflict(started, value, given)) is not None:
            raise PydanticCustomError("duration_conflict", problem)
        return value


class ActionUpdate(BaseModel):
    """Progress, complete or fail a running action; `metadata` is merged into the stored one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "status": "success",
                    "response_data": {"url": "s3://exports/contacts.csv"},
                    "metadata": {"rows": 1200},
                }
            ]
        },
    )

    status: StatusIn | None = None
    response_data: Any = None
    error_message: Text | None = None
    error_type: Annotated[Text, fits("error_type")] | None = None
    completed_at: UtcDatetime | None = None
    execution_time_ms: Milliseconds | None = None
    metadata: JsonObject | None = None


class ActionSummary(BaseModel):
    """An action as listed: the summary fields and other light ones, no payloads."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    tenant_id: UUID
    action_type: str
    action_name: str | None
    provider_name: str | None
    service: str | None
    source: str | None
    status: Status
    error_message: str | None
    error_type: str | None
    execution_time_ms: int | None
    user_id: str | None
    correlation_id: str | None
    parent_id: UUID | None
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime


class ActionRead(ActionSummary):
    """An action with its payloads and steps."""

    model_config = ConfigDict(from_attributes=True)

    session_id: str | None
    request_payload: JsonObject
    response_data: Any
    # `metadata_` on ORM objects (`metadata` is SQLAlchemy's own), `metadata` in stored rows
    metadata: JsonObject = Field(validation_alias=AliasChoices("metadata_", "metadata"))
    steps: list[ActionStep]
    ip_address: str | None
    user_agent: str | None
    updated_at: datetime
    schema_errors: list[dict[str, str]] | None = Field(
        default=None,
        description="Where the payloads broke their action type's `warn` schema: "
        "`[{path, message}]` (null when they matched or the type has no schema)",
    )
    schema_version: int | None = Field(
        default=None, description="The version of the schema the action was checked against"
    )


# The body of the batch route: the route and the ingest lane validate it with this one type.
BATCH_EXAMPLE = [
    {"action_type": "email_send", "provider_name": "sendgrid", "execution_time_ms": 85},
    {
        "action_type": "crm_update",
        "provider_name": "hubspot",
        "status": "failed",
        "error_type": "RateLimitError",
        "error_message": "rate limit exceeded (429)",
        "execution_time_ms": 310,
    },
]
ActionBatch = Annotated[
    list[ActionCreate],
    Body(
        min_length=1,
        max_length=MAX_BATCH,
        openapi_examples={"two actions": {"summary": "Two actions", "value": BATCH_EXAMPLE}},
    ),
]


class BatchCreated(BaseModel):
    created: int
    ids: list[UUID]


SUMMARY_FIELDS = tuple(ActionSummary.model_fields)
