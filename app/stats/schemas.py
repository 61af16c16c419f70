"""Response bodies of the statistics API.

Rates are fractions between 0 and 1 (4 decimals), averages are milliseconds (2 decimals); both
are null when there is nothing to average.
"""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

Interval = Literal["minute", "hour", "day"]


class TypeStats(BaseModel):
    count: int
    successful: int
    failures: int = Field(description="failure and timeout")
    success_rate: float | None
    average_execution_time_ms: float | None


class ModelUsage(BaseModel):
    calls: int = Field(description="Actions whose metadata names a model")
    input_tokens: int = Field(description="Sum of gen_ai.usage.input_tokens")
    output_tokens: int = Field(description="Sum of gen_ai.usage.output_tokens")


class GenAIStats(ModelUsage):
    """Generative-AI calls: actions whose metadata names `gen_ai.request.model` (or
    `gen_ai.response.model`), as OpenTelemetry's GenAI conventions record them."""

    by_model: dict[str, ModelUsage] = Field(description="Per model, most calls first")
    by_provider: dict[str, ModelUsage] = Field(
        description="Per provider, most calls first (calls without a provider omitted)"
    )


class ActionStats(BaseModel):
    total_actions: int
    successful_actions: int
    failed_actions: int = Field(description="failure and timeout")
    average_execution_time_ms: float | None
    actions_by_type: dict[str, int]
    actions_by_provider: dict[str, int] = Field(description="Actions without a provider omitted")
    success_rate: float | None
    by_status: dict[str, int]
    by_source: dict[str, int] = Field(description="Actions without a source omitted")
    by_service: dict[str, int] = Field(description="Actions without a service omitted")
    p50_execution_time_ms: int | None = Field(description="Nearest-rank percentile")
    p95_execution_time_ms: int | None
    p99_execution_time_ms: int | None
    by_type: dict[str, TypeStats]
    by_provider_stats: dict[str, TypeStats] = Field(
        description="Per provider: counts, success rate, average latency (none: omitted)"
    )
    by_service_stats: dict[str, TypeStats] = Field(description="The same per service")
    by_source_stats: dict[str, TypeStats] = Field(description="The same per source")
    genai: GenAIStats | None = Field(
        default=None, description="Model calls and token sums; null when there are none"
    )


class Bucket(BaseModel):
    start: datetime = Field(description="Start of the bucket, UTC")
    total: int
    successful: int = Field(description="success")
    failed: int = Field(description="failure and timeout")
    average_execution_time_ms: float | None


class Timeseries(BaseModel):
    interval: Interval
    since: datetime
    until: datetime
    buckets: list[Bucket] = Field(description="Every bucket of the range, empty ones as zeros")


class UserActivity(BaseModel):
    user_id: str
    total_actions: int
    failed_actions: int
    last_action_at: datetime
    last_action_id: UUID | None
    last_action_type: str | None


class FailurePattern(BaseModel):
    action_type: str
    error_type: str | None
    pattern: str | None = Field(
        description=(
            "Error message with numbers and ids masked: the group's message when it has no "
            "error_type, else one of its messages as a sample (null when none has a message)"
        )
    )
    count: int
    first_seen: datetime
    last_seen: datetime
    example_id: UUID
