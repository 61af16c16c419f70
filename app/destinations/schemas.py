"""API shapes of destinations: what a tenant sends to create or change one, and what it reads.

Each type has its own `config` model (unknown fields refused). The fields of a config that are
secrets (SECRET_FIELDS) are stored encrypted and read back masked as MASK; sending MASK back in
a PATCH keeps the stored value, so a client may send back what it read.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.actions.schemas import Text, fits
from app.actions.statuses import StatusIn

MASK = "********"
# `tree_head`: the signed heads of the audit log as they are kept; `audit` brings them too.
Kind = Literal["action", "audit", "tree_head"]
DEFAULT_KINDS: tuple[Kind, ...] = ("action", "audit")
DestinationType = Literal["http", "splunk_hec", "datadog", "syslog", "s3"]
State = Literal["active", "paused", "failing"]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
Secret = Annotated[str, Field(min_length=1, max_length=500)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpConfig(_Config):
    url: Url
    secret: Secret | None = Field(
        default=None, description="whsec_… signing secret; generated when absent"
    )

    @field_validator("secret")
    @classmethod
    def _standard_secret(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("whsec_"):
            raise ValueError("secret must be a Standard Webhooks secret (whsec_ and base64)")
        return value


class SplunkConfig(_Config):
    url: Url = Field(description="The HEC base URL, e.g. https://splunk.example.com:8088")
    token: Secret
    index: str | None = Field(default=None, max_length=100)
    sourcetype: str | None = Field(default=None, max_length=100)


class DatadogConfig(_Config):
    site: str = Field(default="datadoghq.com", min_length=1, max_length=100)
    api_key: Secret
    service: str | None = Field(default=None, max_length=100)
    tags: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=50)
    url: Url | None = Field(
        default=None, description="Intake base URL, instead of https://http-intake.logs.{site}"
    )


class SyslogConfig(_Config):
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    tls: bool = False
    ca: str | None = Field(default=None, max_length=20_000, description="PEM CA bundle (TLS)")


class S3Config(_Config):
    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = Field(default="", max_length=500)
    endpoint_url: Url | None = None
    region: str = Field(min_length=1, max_length=50)
    access_key_id: str = Field(min_length=1, max_length=128)
    secret_access_key: Secret
    format: Literal["ndjson", "parquet"] = "ndjson"


CONFIGS: dict[str, type[_Config]] = {
    "http": HttpConfig,
    "splunk_hec": SplunkConfig,
    "datadog": DatadogConfig,
    "syslog": SyslogConfig,
    "s3": S3Config,
}
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "http": ("secret",),
    "splunk_hec": ("token",),
    "datadog": ("api_key",),
    "syslog": (),
    "s3": ("secret_access_key",),
}


class Filters(BaseModel):
    """The live stream's filters: a record is delivered when every given one matches."""

    model_config = ConfigDict(extra="forbid")

    action_type: list[Annotated[Text, fits("action_type")]] = Field(
        default_factory=list, max_length=100, description="Any of these types"
    )
    status: list[StatusIn] = Field(
        default_factory=list, max_length=20, description="Any of these statuses"
    )
    provider_name: list[Annotated[Text, fits("provider_name")]] = Field(
        default_factory=list, max_length=100, description="Any of these providers"
    )
    service: Annotated[Text, fits("service")] | None = None
    user_id: Annotated[Text, fits("user_id")] | None = None
    session_id: Annotated[Text, fits("session_id")] | None = None
    correlation_id: Annotated[Text, fits("correlation_id")] | None = None


CONFIG_DESCRIPTION = (
    "The type's settings. http: url, secret? (whsec_…; generated when absent). splunk_hec: "
    "url, token, index?, sourcetype?. datadog: site (datadoghq.com), api_key, service?, tags?, "
    "url?. syslog: host, port, tls?, ca? (PEM). s3: bucket, prefix?, endpoint_url?, region, "
    "access_key_id, secret_access_key, format (ndjson or parquet). Secrets are stored "
    "encrypted and read back masked."
)


KINDS_DESCRIPTION = (
    "Which records: action, audit, tree_head (default action and audit). `audit` also delivers "
    "the signed tree heads of the audit log as they are kept; `tree_head` alone delivers only "
    "those."
)


DESTINATION_EXAMPLE: dict[str, Any] = {
    "name": "Security data lake",
    "type": "http",
    "config": {"url": "https://siem.example.com/actionlog"},
    "kinds": ["action", "audit"],
    "status": ["failure", "timeout"],
}


class DestinationCreate(Filters):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [DESTINATION_EXAMPLE]})

    name: str = Field(min_length=1, max_length=255)
    type: DestinationType
    config: dict[str, Any] = Field(description=CONFIG_DESCRIPTION)
    kinds: list[Kind] = Field(
        default_factory=lambda: list(DEFAULT_KINDS),
        min_length=1,
        description=KINDS_DESCRIPTION,
    )
    state: Literal["active", "paused"] = "active"


class DestinationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"state": "paused"}]})

    name: str | None = Field(default=None, min_length=1, max_length=255)
    config: dict[str, Any] | None = Field(
        default=None, description="Fields to change; a masked secret keeps its stored value"
    )
    kinds: list[Kind] | None = Field(default=None, min_length=1, description=KINDS_DESCRIPTION)
    filters: Filters | None = None
    state: Literal["active", "paused"] | None = None


class DestinationRead(BaseModel):
    id: UUID
    name: str
    type: DestinationType
    config: dict[str, Any]
    kinds: list[Kind]
    filters: dict[str, Any]
    state: State
    delivered_through: int = Field(description="The last stream event id delivered")
    lag_events: int = Field(description="Stream events after delivered_through")
    lag_seconds: float = Field(description="Age of the oldest event not delivered yet")
    last_error: str | None
    last_error_at: datetime | None
    last_success_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DestinationCreated(DestinationRead):
    secret: str | None = Field(
        default=None, description="The generated signing secret (http), shown only this once"
    )


class TestResult(BaseModel):
    ok: bool
    status_code: int | None = Field(description="The receiver's HTTP status, if any")
    response: str | None = Field(description="The start of the receiver's answer")
    error: str | None
