"""Request and response bodies of the alerting API.

Rule bodies use the usual alerting names (`name`, `metric`, `op`, `threshold`, `window_minutes`,
`min_count`, `filters`, `group_by`, `webhook_ids`, `cooldown_minutes`) and add `preset`
(start from one of the preset thresholds) and `enabled`. `error_rate` is a percentage (5
means 5 %), latencies are milliseconds, counts are numbers of rows in the window.
"""

import math
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from app.actions.schemas import Text, fits

Metric = Literal["failure_count", "error_rate", "latency_avg", "latency_p95", "audit_changes"]
Op = Literal[">", ">=", "<", "<="]
GroupBy = Literal["provider_name", "action_type"]
PresetName = Literal["error_rate", "provider_latency", "failure_spike", "audit_activity"]
DeliveryStatus = Literal["pending", "delivered", "failed"]
Name = Annotated[Text, StringConstraints(min_length=1, max_length=255)]
Description = Annotated[Text, StringConstraints(max_length=1024)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
MAX_WINDOW_MINUTES = 7 * 24 * 60


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("threshold must be a finite number")
    return value


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"url": "https://hooks.example.com/actionlog", "description": "on-call"}]
        },
    )

    url: Url = Field(description="http(s) URL that receives the signed notifications")
    description: Description | None = None


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"description": "on-call (primary)", "enabled": True}]},
    )

    url: Url | None = None
    description: Description | None = None
    enabled: bool | None = Field(
        default=None, strict=True, description="true re-enables a disabled endpoint"
    )


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    url: str
    description: str | None
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookRead):
    secret: str = Field(description="The signing secret (whsec_…), shown only this once")


class RuleFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action_type: Annotated[Text, fits("action_type")] | None = None
    provider_name: Annotated[Text, fits("provider_name")] | None = None
    service: Annotated[Text, fits("service")] | None = None


RULE_EXAMPLE: dict[str, Any] = {
    "name": "CRM failures",
    "metric": "failure_count",
    "op": ">",
    "threshold": 3,
    "window_minutes": 5,
    "filters": {"action_type": "crm_create"},
    "cooldown_minutes": 15,
}


# A rule needs a preset, or else every field that a preset would give (the schema says so)
_PRESET_OR_FIELDS: dict[str, Any] = {
    "anyOf": [
        {"required": ["preset"], "properties": {"preset": {"type": "string"}}},
        {
            "required": ["name", "metric", "op", "threshold", "window_minutes"],
            "properties": {
                "name": {"type": "string"},
                "metric": {"type": "string"},
                "op": {"type": "string"},
                "threshold": {"type": "number"},
                "window_minutes": {"type": "integer"},
            },
        },
    ]
}


# audit_changes counts audit rows: it takes no filters and no group_by (the schema says so)
_NOT_GROUPED = {
    "not": {
        "anyOf": [
            {
                "required": [key, "group_by"],
                "properties": {key: {"enum": [value]}, "group_by": {"type": "string"}},
            }
            for key, value in (("metric", "audit_changes"), ("preset", "audit_activity"))
        ]
        + [
            {
                "required": [key, "filters"],
                "properties": {
                    key: {"enum": [value]},
                    "filters": {"type": "object", "minProperties": 1},
                },
            }
            for key, value in (("metric", "audit_changes"), ("preset", "audit_activity"))
        ]
    }
}


class RuleCreate(BaseModel):
    """A rule; with `preset`, the preset's values fill every field not given."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=lambda schema: schema.update(
            _PRESET_OR_FIELDS, **_NOT_GROUPED, examples=[RULE_EXAMPLE]
        ),
    )

    preset: PresetName | None = None
    name: Name | None = None
    metric: Metric | None = None
    op: Op | None = None
    threshold: float | None = Field(default=None, strict=True)
    window_minutes: int | None = Field(default=None, ge=1, le=MAX_WINDOW_MINUTES, strict=True)
    min_count: int | None = Field(
        default=None,
        ge=1,
        strict=True,
        description="Rows the window must hold before the rule can fire",
    )
    filters: RuleFilters | None = None
    group_by: GroupBy | None = None
    webhook_ids: list[UUID] = Field(default_factory=list, max_length=20)
    cooldown_minutes: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=MAX_WINDOW_MINUTES,
        description="Least time between two firing notifications of a rule (and group)",
    )
    enabled: Annotated[bool, Field(strict=True)] = True

    _finite_threshold = field_validator("threshold")(_finite)


def _no_default(schema: dict[str, Any]) -> None:
    """Leave the default (None: unchanged) out of a field whose schema does not allow null."""
    schema.pop("default", None)


class RuleUpdate(BaseModel):
    """The fields to change; a field left out keeps its value. A rule always has a name,
    metric, op, threshold and window, so those cannot be null (the schema says so)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=lambda schema: schema.update(
            _NOT_GROUPED, examples=[{"threshold": 10, "enabled": False}]
        ),
    )

    name: Name | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    metric: Metric | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    op: Op | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    threshold: float | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    window_minutes: Annotated[int, Field(ge=1, le=MAX_WINDOW_MINUTES)] | SkipJsonSchema[None] = (
        Field(default=None, json_schema_extra=_no_default)
    )
    min_count: int | None = Field(default=None, ge=1)
    filters: RuleFilters | None = None
    group_by: GroupBy | None = None
    webhook_ids: list[UUID] | None = Field(default=None, max_length=20)
    cooldown_minutes: Annotated[int, Field(ge=0, le=MAX_WINDOW_MINUTES)] | SkipJsonSchema[None] = (
        Field(default=None, json_schema_extra=_no_default)
    )
    enabled: Annotated[bool, Field(strict=True)] | None = None

    _finite_threshold = field_validator("threshold")(_finite)

    @field_validator(
        "name", "metric", "op", "threshold", "window_minutes", "cooldown_minutes", mode="before"
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise PydanticCustomError(
                "null_not_allowed",
                "cannot be null: a rule always has one (leave it out to keep it)",
            )
        return value


class GroupState(BaseModel):
    group: str | None = Field(description="The group's value (null for an ungrouped rule)")
    state: Literal["ok", "firing", "resolved"]
    value: float | None
    changed_at: datetime
    evaluated_at: datetime


class RuleRead(BaseModel):
    id: UUID
    name: str
    metric: Metric
    op: Op
    threshold: float
    window_minutes: int
    min_count: int | None
    filters: RuleFilters
    group_by: GroupBy | None
    webhook_ids: list[UUID]
    cooldown_minutes: int
    enabled: bool
    preset: PresetName | None
    created_at: datetime
    updated_at: datetime
    states: list[GroupState] = Field(default_factory=list, description="Groups that fired")


class AlertEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    rule_id: UUID
    rule_name: str
    group: str | None
    state: Literal["firing", "resolved"]
    metric: Metric
    op: Op
    threshold: float
    value: float | None = Field(description="The value measured when the state changed")
    count: int = Field(description="Rows in the window then")
    window_minutes: int
    created_at: datetime


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status (null: no answer)")
    duration_ms: int
    error: str | None


class DeliveryRead(BaseModel):
    id: UUID
    endpoint_id: UUID
    event_id: UUID | None
    message_id: str = Field(description="The webhook-id header, the same on every retry")
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_duration_ms: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptRead] = Field(default_factory=list)


class PresetRead(BaseModel):
    preset: PresetName
    description: str
    rule: RuleCreate
