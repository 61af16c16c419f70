"""Request and response bodies of the audit-log API, and the filters of its listing."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyAddress,
    StringConstraints,
    WithJsonSchema,
)

from app.audits.diff import DiffKind
from app.core.inputs import Text

Action = Annotated[Text, StringConstraints(min_length=1, max_length=100)]
ResourceType = Annotated[Text, StringConstraints(min_length=1, max_length=100)]
ResourceId = Annotated[Text, StringConstraints(min_length=1, max_length=255)]
UserId = Annotated[Text, StringConstraints(min_length=1, max_length=255)]
UserAgent = Annotated[Text, StringConstraints(max_length=1024)]
CorrelationId = Annotated[Text, StringConstraints(min_length=1, max_length=255)]
MAX_BATCH = 1000


def _text_only(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an IP address as text")
    return value


# an address as text only: pydantic would also take an integer (as IPv4) or bytes
IpAddress = Annotated[
    IPvAnyAddress,
    BeforeValidator(_text_only),
    WithJsonSchema({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}),
]


@dataclass(frozen=True)
class AuditFilters:
    """Which rows a listing returns: every given field must match; `until` is exclusive."""

    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    user_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    correlation_id: str | None = None


AUDIT_EXAMPLE: dict[str, Any] = {
    "action": "update",
    "resource_type": "contact",
    "resource_id": "4812",
    "user_id": "alice@example.com",
    "ip_address": "203.0.113.7",
    "before": {"email": "a@old.example", "address": {"city": "Lyon"}},
    "after": {"email": "a@new.example", "address": {"city": "Paris", "zip": "75001"}},
    "metadata": {"reason": "support ticket 991"},
    "correlation_id": "inc-991",
}


class AuditCreate(BaseModel):
    """One change to a resource. The tenant is the API key's; it is never read from the body."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [AUDIT_EXAMPLE]})

    action: Action = Field(description="create, update, delete, or any verb")
    resource_type: ResourceType = Field(examples=["contact"])
    resource_id: ResourceId = Field(examples=["4812"])
    before: dict[str, Any] | None = Field(default=None, description="The resource before")
    after: dict[str, Any] | None = Field(default=None, description="The resource after")
    user_id: UserId | None = Field(default=None, description="Who made the change")
    ip_address: IpAddress | None = Field(default=None, description="Where it came from")
    user_agent: UserAgent | None = None
    metadata: dict[str, Any] | None = Field(default=None, description="Free context")
    correlation_id: CorrelationId | None = Field(
        default=None,
        description="Groups this change with the actions of one incident, job or trace "
        "(`GET /api/v1/logs/timeline`)",
        examples=["inc-4812"],
    )


class DiffEntry(BaseModel):
    path: str = Field(description="Dotted path of the field, e.g. `address.city`")
    kind: DiffKind
    old: Any = Field(default=None, description="The value before (null when added)")
    new: Any = Field(default=None, description="The value after (null when removed)")


class AuditChanges(BaseModel):
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    diff: list[DiffEntry] = Field(
        default_factory=list,
        description="Field-level changes; a list that differs is one entry with both lists",
    )


class AuditRead(BaseModel):
    """A stored audit row, with its place in the tenant's hash chain."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    tenant_id: UUID
    action: str
    resource_type: str
    resource_id: str
    user_id: str | None
    changes: AuditChanges
    ip_address: str | None
    user_agent: str | None
    metadata: dict[str, Any] | None = Field(validation_alias="metadata_")
    correlation_id: str | None = None
    created_at: datetime
    sequence: int = Field(description="Position in the tenant's chain, from 1, without gaps")
    prev_hash: str
    hash: str = Field(description="SHA-256 of prev_hash and this row's canonical JSON")

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> "AuditRead":
        """A row as written by column name (`metadata`, where the ORM says `metadata_`)."""
        return cls.model_validate({**row, "metadata_": row["metadata"]})


class AuditBatch(BaseModel):
    """Up to 1000 audit events, recorded in order, all or none."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {"action": "create", "resource_type": "deal", "resource_id": "d-1",
                         "after": {"stage": "lead"}},
                        {"action": "update", "resource_type": "deal", "resource_id": "d-1",
                         "before": {"stage": "lead"}, "after": {"stage": "won"}},
                    ]
                }
            ]
        },
    )  # fmt: skip

    events: list[AuditCreate] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} events, in order"
    )


class AuditBatchCreated(BaseModel):
    """The answer to a batch: the rows it recorded, in the order of its events."""

    created: int = Field(description="How many rows were recorded")
    skipped: list[int] = Field(
        default_factory=list,
        description="Indexes of the updates whose `before` equals their `after`: they changed "
        "nothing, so nothing was recorded for them (as a single POST answers 200)",
    )
    events: list[AuditRead] = Field(description="The recorded rows, in the batch's order")


class NotRecorded(BaseModel):
    """The answer to an update whose `before` equals its `after`: nothing was written."""

    recorded: Literal[False] = False
    detail: str


class CheckpointRead(BaseModel):
    """A signed checkpoint of a tenant's chain: the rows up to `sequence` were pruned."""

    tenant_id: UUID
    sequence: int
    hash: str = Field(description="The hash of row `sequence`, which the next row follows")
    created_at: datetime
    key_id: str = Field(description="SHA-256 (hex) of the signing key's raw public bytes")
    signature: str = Field(description="Ed25519 signature, base64")


class PublicKey(BaseModel):
    key_id: str
    public_key: str = Field(description="The raw 32-byte Ed25519 public key, base64")
    public_key_pem: str = Field(description="The same key as a SubjectPublicKeyInfo PEM")
    current: bool = Field(description="Whether new checkpoints are signed with it")


class PublicKeys(BaseModel):
    """The keys that sign audit checkpoints; keep them outside the service to check it."""

    algorithm: Literal["Ed25519"] = "Ed25519"
    key_id: str = Field(description="The current key's id")
    public_key: str = Field(description="The current key, raw 32 bytes, base64")
    signed_message: str = Field(
        description="What is signed: this prefix, then the canonical JSON of tenant_id, "
        "sequence, hash, created_at and key_id"
    )
    keys: list[PublicKey]


class ChainVerification(BaseModel):
    """The result of recomputing a tenant's audit chain."""

    valid: bool
    checked: int = Field(description="Rows that verified, in sequence order")
    head_sequence: int = Field(description="The sequence recorded as the chain's last")
    head_hash: str = Field(description="The hash recorded as the chain's last")
    first_invalid_sequence: int | None = Field(
        default=None, description="The first sequence that does not verify (when invalid)"
    )
    first_invalid_id: UUID | None = Field(
        default=None, description="The id of that row, when it exists"
    )
    reason: str | None = Field(default=None, description="Why the chain does not verify")
    pruned_through: int = Field(
        default=0,
        description="Rows up to this sequence were pruned by retention (0: none); the "
        "verification started from the signed checkpoint there",
    )
    checkpoint: CheckpointRead | None = Field(
        default=None, description="The checkpoint verification started from"
    )


class ResourceState(BaseModel):
    """A resource as it was at a time, rebuilt from its audit trail."""

    resource_type: str
    resource_id: str
    at: datetime = Field(description="The time asked about")
    exists: bool = Field(description="False before its first event and after a delete")
    deleted: bool = Field(default=False, description="True when the last event was a delete")
    state: dict[str, Any] | None = Field(
        default=None, description="The `after` of the last event at or before `at`"
    )
    sequence: int | None = Field(
        default=None, description="Chain sequence of that event (the state rests on it)"
    )
    event_id: UUID | None = None
    event_action: str | None = None
    as_of: datetime | None = Field(default=None, description="When that event was recorded")
