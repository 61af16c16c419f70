"""Bodies of the retention API: archive files as listed."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class ArchiveRead(BaseModel):
    """One archive file whose rows were deleted from the database."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    tenant_id: UUID
    kind: str = Field(description="actions or audits")
    period: str = Field(description="The UTC month of the rows, YYYY-MM")
    path: str = Field(description="Relative to ARCHIVE_DIR; the manifest is beside it")
    host: str = Field(description="The host that wrote it")
    row_count: int
    bytes: int
    sha256: str = Field(description="SHA-256 of the file, as in its manifest")
    first_at: datetime
    last_at: datetime
    first_sequence: int | None = Field(description="Audits: the first row's sequence")
    last_sequence: int | None
    first_hash: str | None
    last_hash: str | None = Field(description="Audits: the hash the checkpoint holds")
    created_at: datetime
