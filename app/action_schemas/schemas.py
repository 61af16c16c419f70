"""API shapes of action schemas: what a PUT sends, what every read answers."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["enforce", "warn"]
PARTS = ("request_payload", "response_data", "metadata")


class SchemaPut(BaseModel):
    """A new version of an action type's schema: one JSON Schema (2020-12) per checked part."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "mode": "warn",
                    "request_payload": {
                        "type": "object",
                        "required": ["contact"],
                        "properties": {"contact": {"type": "object"}},
                    },
                }
            ]
        },
    )

    mode: Mode = Field(
        description="enforce: refuse an action that does not match (422); "
        "warn: store it with `schema_errors`"
    )
    request_payload: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of `request_payload`"
    )
    response_data: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of `response_data`"
    )
    metadata: dict[str, Any] | None = Field(default=None, description="JSON Schema of `metadata`")


class SchemaRead(BaseModel):
    """One version of an action type's schema."""

    action_type: str
    version: int
    mode: Mode
    request_payload: dict[str, Any] | None = None
    response_data: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    created_at: datetime


class SchemaFinding(BaseModel):
    """Where a payload broke its schema, and which rule."""

    path: str = Field(description="The field, e.g. `request_payload.contact.id`")
    message: str
