"""Request and response bodies of the personal-data API."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from app.subjects.models import DEFAULT_SUBJECT_PATH

MAX_FIELDS = 50


class SubjectConfigBody(BaseModel):
    """Which fields of the tenant's audit events hold personal data, and whose data it is."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "fields": [
                        "user_id",
                        "ip_address",
                        "changes.before.email",
                        "changes.after.email",
                    ],
                    "subject_path": "user_id",
                }
            ]
        },
    )

    fields: list[str] = Field(
        max_length=MAX_FIELDS,
        description="Dotted paths: user_id, ip_address, user_agent, resource_id, or paths under "
        "metadata., changes.before. and changes.after.",
        examples=[["user_id", "ip_address", "changes.before.email", "changes.after.email"]],
    )
    subject_path: str = Field(
        default=DEFAULT_SUBJECT_PATH,
        description="The field that names an event's data subject: user_id, resource_id or a "
        "metadata. path",
    )


class Erasure(BaseModel):
    """The outcome of erasing a data subject."""

    subject_id: str
    erased: bool = Field(description="True: erased now; false: it had been erased already")
    erased_at: datetime
    reference: UUID = Field(
        description="Names the subject in the audit trail (`resource_id` of the `erase` event)"
    )
    detail: str
