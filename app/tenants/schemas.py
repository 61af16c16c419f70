"""Request and response bodies of the tenant and key management API."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic.json_schema import SkipJsonSchema

from app.core.auth import Scope
from app.core.inputs import Text, in_time_range, iso_8601_only

Slug = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$", max_length=100)
]
RetentionDays = Annotated[
    int, Field(ge=1, le=36500, description="Days to keep actions (null: forever)")
]
AuditRetentionDays = Annotated[
    int, Field(ge=1, le=36500, description="Days to keep audit rows (null: forever)")
]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a timezone, e.g. 2030-01-01T00:00:00Z")
    return in_time_range(value)


AwareDatetime = Annotated[datetime, BeforeValidator(iso_8601_only), AfterValidator(_aware)]
Name = Annotated[Text, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)]


class TenantCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Example Corp", "retention_days": 90}]},
    )

    name: Name
    slug: Slug | None = Field(default=None, description="Derived from the name when omitted")
    retention_days: RetentionDays | None = None
    audit_retention_days: AuditRetentionDays | None = None


def _no_default(schema: dict[str, Any]) -> None:
    """Leave the default (None: unchanged) out of a field whose schema does not allow null."""
    schema.pop("default", None)


class TenantUpdate(BaseModel):
    """The fields to change; a field left out keeps its value. A tenant always has a name and
    a slug, so those cannot be null (the schema says so)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "Example Inc"}]}
    )

    name: Name | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    slug: Slug | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    retention_days: RetentionDays | None = None
    audit_retention_days: AuditRetentionDays | None = None


class TenantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    slug: str
    retention_days: int | None
    audit_retention_days: int | None
    created_at: datetime
    updated_at: datetime


class TenantCreated(TenantRead):
    api_key: str = Field(description="A key with every scope. Shown once: store it now")
    api_key_id: UUID


class RetentionPolicy(BaseModel):
    """A tenant's retention: days to keep actions and audit rows (null: keep forever)."""

    model_config = ConfigDict(
        extra="forbid",
        from_attributes=True,
        json_schema_extra={"examples": [{"retention_days": 90, "audit_retention_days": 365}]},
    )

    retention_days: RetentionDays | None = None
    audit_retention_days: AuditRetentionDays | None = None


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "dashboard", "scopes": ["read"]}]}
    )

    name: Name
    scopes: Annotated[list[Scope], Field(min_length=1)]
    expires_at: AwareDatetime | None = None


class ApiKeyRead(BaseModel):
    """A key as listed: its prefix identifies it; the secret is never shown again."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    tenant_id: UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The full key. Shown once: store it now")
