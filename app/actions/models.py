"""Action logs (what an application did) and their rollups."""

from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_id, utcnow


class ActionLog(Base):
    __tablename__ = "action_logs"
    __table_args__ = (
        # tenant first: ids are unique per tenant, and a sharded database (Citus, by
        # tenant_id) can only enforce keys that hold the distribution column
        PrimaryKeyConstraint("tenant_id", "id"),
        Index("ix_action_logs_tenant_status_created", "tenant_id", "status", "created_at"),
        Index("ix_action_logs_tenant_type_created", "tenant_id", "action_type", "created_at"),
        Index("ix_action_logs_tenant_provider_created", "tenant_id", "provider_name", "created_at"),
        # Most actions have no correlation or parent: partial indexes skip them, which saves
        # two of the eight index insertions of such a row and their bytes (bench/RESULTS.md).
        Index(
            "ix_action_logs_tenant_correlation",
            "tenant_id",
            "correlation_id",
            postgresql_where=text("correlation_id IS NOT NULL"),
            sqlite_where=text("correlation_id IS NOT NULL"),
        ),
        Index("ix_action_logs_tenant_user_created", "tenant_id", "user_id", "created_at"),
        Index(
            "ix_action_logs_tenant_parent",
            "tenant_id",
            "parent_id",
            postgresql_where=text("parent_id IS NOT NULL"),
            sqlite_where=text("parent_id IS NOT NULL"),
        ),
        Index("ix_action_logs_tenant_session_created", "tenant_id", "session_id", "created_at"),
        # `schema_errors=true` lists the few actions that failed a `warn` schema
        Index(
            "ix_action_logs_tenant_schema_errors",
            "tenant_id",
            "created_at",
            postgresql_where=text("schema_errors IS NOT NULL"),
            sqlite_where=text("schema_errors IS NOT NULL"),
        ),
        # the live stream reads actions by their number (app/streams/events.py)
        Index(
            "ix_action_logs_tenant_stream",
            "tenant_id",
            "stream_seq",
            postgresql_where=text("stream_seq IS NOT NULL"),
            sqlite_where=text("stream_seq IS NOT NULL"),
        ),
    )

    id: Mapped[UUID] = mapped_column(default=new_id)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    action_type: Mapped[str] = mapped_column(String(100))
    action_name: Mapped[str | None] = mapped_column(String(255))
    provider_name: Mapped[str | None] = mapped_column(String(100))
    service: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(50))
    user_id: Mapped[str | None] = mapped_column(String(255))
    session_id: Mapped[str | None] = mapped_column(String(255))
    correlation_id: Mapped[str | None] = mapped_column(String(255))
    parent_id: Mapped[UUID | None] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(20))
    request_payload: Mapped[Any] = mapped_column(JSONType, default=dict)
    response_data: Mapped[Any] = mapped_column(JSONType, nullable=True)
    metadata_: Mapped[Any] = mapped_column("metadata", JSONType, default=dict)
    steps: Mapped[Any] = mapped_column(JSONType, default=list)
    error_message: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(255))
    execution_time_ms: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The fingerprint of the body first recorded under a client-generated id (else NULL)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # What a `warn` schema of the action type found wrong ([{path, message}]), and the version
    # of the schema it was checked against (app/action_schemas/); NULL when it matched or when
    # the type has no schema.
    schema_errors: Mapped[Any] = mapped_column(JSONType, nullable=True)
    schema_version: Mapped[int | None] = mapped_column(Integer)
    # The stream number of the action's latest event (app/streamlog/record.py); NULL on rows
    # recorded before numbers were kept on the row, whose events are in `stream_events`.
    stream_seq: Mapped[int | None] = mapped_column(BigInteger)


# Newest-first listing and keyset pagination walk this index: (tenant, created_at, id) DESC.
Index(
    "ix_action_logs_tenant_created",
    ActionLog.tenant_id,
    ActionLog.created_at.desc(),
    ActionLog.id.desc(),
)


# Text search (`q`: a case-folded substring of action_name or error_message) on PostgreSQL:
# trigram GIN indexes over lower(column), tenant first (btree_gin keeps the uuid in a GIN
# index). A rare term is answered from them; and ANALYZE keeps statistics of the indexed
# expressions, so the planner knows how common a term is and, for a common one, walks the
# newest-first index until a page is full instead. SQLite has no such index: it scans.
TEXT_SEARCH_INDEXES = tuple(
    Index(
        f"ix_action_logs_tenant_{name}_trgm",
        ActionLog.tenant_id,
        func.lower(column).label(f"lower_{name}"),
        postgresql_using="gin",
        postgresql_ops={f"lower_{name}": "gin_trgm_ops"},
        info={"dialects": ("postgresql",)},
    ).ddl_if(dialect="postgresql")
    for name, column in (
        ("action_name", ActionLog.action_name),
        ("error_message", ActionLog.error_message),
    )
)


# The table itself, for Core statements (they need none of the ORM's per-row work), and every
# column of an action row in table order: the one list that inserts and export use.
action_logs = cast(Table, ActionLog.__table__)
ACTION_COLUMNS: tuple[str, ...] = tuple(column.name for column in action_logs.columns)


HISTOGRAM_BUCKETS = 71
ROLLUP_DIMENSIONS = ("action_type", "provider_name", "service", "source", "status")

# Actions pre-aggregated per tenant, period (a minute, an hour or a day, in seconds) starting at
# `start`, and dimension values, kept in step with the rows in the same transactions; statistics
# read these instead of scanning raw rows. NULL dimensions are stored as '' so that the primary
# key (and ON CONFLICT) can match them. h00..h70 count the timed actions per latency bucket
# (app/actions/rollups.py) for percentiles; NULL counts as 0 (writes leave empty buckets NULL:
# on PostgreSQL a NULL takes a bit of the row's null bitmap, a 0 eight bytes, and a minute's
# row rarely has more than a few buckets filled).
action_rollups = Table(
    "action_rollups",
    Base.metadata,
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("period", Integer, primary_key=True),
    Column("start", UTCDateTime, primary_key=True),
    Column("action_type", String(100), primary_key=True),
    Column("provider_name", String(100), primary_key=True),
    Column("service", String(100), primary_key=True),
    Column("source", String(50), primary_key=True),
    Column("status", String(20), primary_key=True),
    Column("total", BigInteger, nullable=False),
    Column("timed", BigInteger, nullable=False),
    Column("time_sum", BigInteger, nullable=False),
    *(Column(f"h{i:02d}", BigInteger, nullable=True) for i in range(HISTOGRAM_BUCKETS)),
)

# Per user, tenant and period (an hour or a day) starting at `start`: the user's actions, the
# failed ones, and the newest one, kept in step with the rows as action_rollups are. The most
# active users of any range are read from these instead of every row (app/stats/).
action_user_rollups = Table(
    "action_user_rollups",
    Base.metadata,
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("period", Integer, primary_key=True),
    Column("start", UTCDateTime, primary_key=True),
    Column("user_id", String(255), primary_key=True),
    Column("total", BigInteger, nullable=False),
    Column("failed", BigInteger, nullable=False),
    Column("last_action_at", UTCDateTime, nullable=True),
    Column("last_action_id", Uuid, nullable=True),
    Column("last_action_type", String(100), nullable=True),
)

# Failed actions (status failure or timeout) per tenant, period (a minute, an hour or a day)
# starting at `start`, rollup dimensions, error_type ('' when none) and pattern: the message
# with ids, addresses and numbers masked (app/actions/rollups.py), '' for a typed failure or
# none. The key holds the pattern's digest (`pattern_key`), as a message can be longer than an
# index entry may be. Per group: how many, first and last seen, the newest id, and the greatest
# raw message as the group's sample. `stats/failures` reads these instead of failed rows.
action_failure_rollups = Table(
    "action_failure_rollups",
    Base.metadata,
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("period", Integer, primary_key=True),
    Column("start", UTCDateTime, primary_key=True),
    Column("action_type", String(100), primary_key=True),
    Column("provider_name", String(100), primary_key=True),
    Column("service", String(100), primary_key=True),
    Column("source", String(50), primary_key=True),
    Column("status", String(20), primary_key=True),
    Column("error_type", String(255), primary_key=True),
    Column("pattern_key", String(32), primary_key=True),
    Column("pattern", Text, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("first_seen", UTCDateTime, nullable=True),
    Column("last_seen", UTCDateTime, nullable=True),
    Column("example_id", Uuid, nullable=True),
    Column("sample", Text, nullable=True),
)

# Generative-AI calls (actions whose metadata names a model: `gen_ai.request.model`, else
# `gen_ai.response.model`, as OpenTelemetry's GenAI conventions record them) per tenant, period
# (a minute, an hour or a day) starting at `start`, rollup dimensions and model: how many, and
# the sums of their `gen_ai.usage.input_tokens` and `gen_ai.usage.output_tokens`. Kept in step
# with the rows like action_rollups (app/actions/genai.py); `stats` reads its GenAI figures here.
action_genai_rollups = Table(
    "action_genai_rollups",
    Base.metadata,
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("period", Integer, primary_key=True),
    Column("start", UTCDateTime, primary_key=True),
    Column("action_type", String(100), primary_key=True),
    Column("provider_name", String(100), primary_key=True),
    Column("service", String(100), primary_key=True),
    Column("source", String(50), primary_key=True),
    Column("status", String(20), primary_key=True),
    Column("model", String(255), primary_key=True),
    Column("calls", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
)
