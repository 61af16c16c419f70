"""Request and response bodies of the action-log API.

String limits come from the columns of `ActionLog`, so a value that would not fit is refused
with a 422 naming the field instead of failing at the database. Timestamps without a timezone
are read as UTC, and must lie in the accepted range (app/core/inputs.py).
"""

from datetime import datetime
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
from sqlalchemy import String

from app.actions.models import action_logs
from app.actions.statuses import Status, StatusIn
from app.core.inputs import Int32
from app.core.inputs import Text as Text  # re-exported: other domains' schemas use it
from app.core.inputs import UtcDatetime as UtcDatetime

MAX_BATCH = 1000
Sort = Literal["created_at", "execution_time_ms"]  # the orders a listing can take
MAX_STEPS = 1000


def fits(column: str, min_length: int = 0) -> StringConstraints:
    """A string constraint matching the length of an `action_logs` column."""
    column_type = action_logs.c[column].type
    assert isinstance(column_type, String), f"{column} is a string column"
    length = column_type.length
    return StringConstraints(min_length=min_length, max_length=length)


JsonObject = dict[str, Any]
Milliseconds = Int32


class StepCreate(BaseModel):
    """One step of a long action, as seed 004 logs them."""

    model_config = ConfigDict(extra="forbid")

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

    model_config = ConfigDict(extra="forbid")

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

    @field_validator("completed_at")
    @classmethod
    def _not_before_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        started = info.data.get("started_at")
        if value is not None and started is not None and value < started:
            raise ValueError("completed_at must not be before started_at")
        return value


class ActionUpdate(BaseModel):
    """Progress, complete or fail a running action; `metadata` is merged into the stored one."""

    model_config = ConfigDict(extra="forbid")

    status: StatusIn | None = None
    response_data: Any = None
    error_message: Text | None = None
    error_type: Annotated[Text, fits("error_type")] | None = None
    completed_at: UtcDatetime | None = None
    execution_time_ms: Milliseconds | None = None
    metadata: JsonObject | None = None


class ActionSummary(BaseModel):
    """An action as listed: seed 001's summary fields and other light ones, no payloads."""

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
ActionBatch = Annotated[list[ActionCreate], Body(min_length=1, max_length=MAX_BATCH)]


class BatchCreated(BaseModel):
    created: int
    ids: list[UUID]


SUMMARY_FIELDS = tuple(ActionSummary.model_fields)
