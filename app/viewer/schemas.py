"""API shapes of viewer tokens: what minting one asks for and what it answers."""

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from app.core.inputs import Text

Kind = Literal["action", "audit"]
MAX_EXPIRES_IN = 86_400

Short = Annotated[Text, Field(min_length=1, max_length=100)]
Long = Annotated[Text, Field(min_length=1, max_length=255)]


def _listed(value: object) -> object:
    return [value] if isinstance(value, str) else value


# Filters that narrow each kind of record: actions have no resource, audit events no type.
ACTION_ONLY = frozenset({"action_type", "provider_name", "service", "source", "session_id"})
AUDIT_ONLY = frozenset({"resource_type", "resource_id", "action"})


class ViewerFilters(BaseModel):
    """What the viewer may see: every given filter narrows every view (exact matches; a list
    matches any of its values)."""

    model_config = ConfigDict(extra="forbid")

    action_type: Annotated[list[Short], BeforeValidator(_listed), Field(max_length=50)] | None = (
        None
    )
    provider_name: Annotated[list[Short], BeforeValidator(_listed), Field(max_length=50)] | None = (
        None
    )
    service: Short | None = None
    source: Annotated[Text, Field(min_length=1, max_length=50)] | None = None
    user_id: Long | None = None
    session_id: Long | None = None
    correlation_id: Long | None = None
    resource_type: Short | None = None
    resource_id: Long | None = None
    action: Short | None = Field(default=None, description="Audit action (create, update …)")

    def given(self) -> set[str]:
        return {name for name, value in self if value is not None}


def _origin(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an origin such as https://app.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError("must be an origin only: scheme, host and port, no path")
    return f"{parts.scheme}://{parts.netloc.lower()}"


class ViewerTokenCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "filters": {"user_id": "customer-42"},
                    "kinds": ["action", "audit"],
                    "expires_in": 600,
                    "embed_origin": "https://app.example.com",
                }
            ]
        },
    )

    filters: ViewerFilters = Field(default_factory=ViewerFilters)
    kinds: list[Kind] | None = Field(
        default=None,
        min_length=1,
        max_length=2,
        description="What the viewer sees; by default every kind its filters can narrow",
    )
    expires_in: int = Field(default=600, ge=1, le=MAX_EXPIRES_IN, description="Seconds")
    embed_origin: str | None = Field(
        default=None,
        max_length=255,
        description="The site allowed to frame the viewer, e.g. https://app.example.com",
    )
    can_export: bool = Field(default=False, description="Whether the viewer may download CSV")

    _embed_origin = field_validator("embed_origin")(classmethod(lambda cls, v: _origin(v)))


class ViewerTokenRead(BaseModel):
    """A live viewer token (the token itself is shown once, at creation)."""

    id: UUID
    filters: ViewerFilters
    kinds: list[Kind]
    embed_origin: str | None
    can_export: bool
    created_at: datetime
    expires_at: datetime


class ViewerTokenCreated(ViewerTokenRead):
    token: str = Field(description="The bearer token (shown once)")
    url: str = Field(description="Open this (e.g. in an iframe) to start a viewer session")
