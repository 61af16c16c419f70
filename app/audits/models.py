"""Audit logs (who changed which resource, before and after), chained per tenant by hash."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, new_id, utcnow


class AuditLog(Base):
    """One change to a resource. Append-only: no route updates or deletes a row."""

    __tablename__ = "audit_logs"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),  # tenant first, as every key (Citus)
        UniqueConstraint("tenant_id", "sequence"),
        Index(
            "ix_audit_logs_tenant_resource", "tenant_id", "resource_type", "resource_id", "sequence"
        ),
        Index("ix_audit_logs_tenant_action_created", "tenant_id", "action", "created_at"),
        Index("ix_audit_logs_tenant_user_created", "tenant_id", "user_id", "created_at"),
        Index(
            "ix_audit_logs_tenant_correlation_created", "tenant_id", "correlation_id", "created_at"
        ),
        # the live stream reads audit events by their number (app/streams/events.py)
        Index(
            "ix_audit_logs_tenant_stream",
            "tenant_id",
            "stream_seq",
            postgresql_where=text("stream_seq IS NOT NULL"),
            sqlite_where=text("stream_seq IS NOT NULL"),
        ),
    )

    id: Mapped[UUID] = mapped_column(default=new_id)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(100))
    resource_type: Mapped[str] = mapped_column(String(100))
    resource_id: Mapped[str] = mapped_column(String(255))
    changes: Mapped[Any] = mapped_column(JSONType)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(1024))
    metadata_: Mapped[Any] = mapped_column("metadata", JSONType, default=dict)
    # Groups the change with the actions of the same incident, job or trace (GET /timeline).
    correlation_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The ciphertexts of the row's personal fields, under its data subject's key
    # (app/subjects/sealing.py); hashed with the row when set.
    sealed: Mapped[Any] = mapped_column(JSONType, nullable=True)
    # The event's number in the tenant's stream (app/streamlog/record.py); not hashed. NULL on
    # rows recorded before numbers were kept on the row, whose events are in `stream_events`.
    stream_seq: Mapped[int | None] = mapped_column(BigInteger)


# Newest-first listing and keyset pagination walk this index: (tenant, created_at, id) DESC.
Index(
    "ix_audit_logs_tenant_created",
    AuditLog.tenant_id,
    AuditLog.created_at.desc(),
    AuditLog.id.desc(),
)


class AuditChainHead(Base):
    """The last link of a tenant's audit chain.

    Writers update this row first, which serialises them per tenant on PostgreSQL (row lock)
    and on SQLite (write lock), so the chain never forks.
    """

    __tablename__ = "audit_chain_heads"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    sequence: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AuditCheckpoint(Base):
    """A signed statement that a tenant's chain reached `sequence` with `hash` at `created_at`.

    Written in the transaction that deletes the rows up to `sequence`, so verification can
    start from it: the first remaining row must follow it, and its signature (Ed25519, by the
    key `key_id`) shows the service made it, not whoever can write to the database.
    """

    __tablename__ = "audit_checkpoints"

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))


class AuditSigningKey(Base):
    """A key that signs checkpoints: the service's own (private key kept) or one given as a setting.

    Not tenant data: one service, one current key, shared by every worker and host through the
    database. Keys given by the AUDIT_SIGNING_KEY setting are recorded with their public half
    only, so that checkpoints they signed still verify after the setting changes.
    """

    __tablename__ = "audit_signing_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))
    private_seed: Mapped[str | None] = mapped_column(String(64))
    generated: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditMerkleNode(Base):
    """The hash of leaves [position·2^level, (position+1)·2^level) of a tenant's Merkle tree
    of audit events (app/audits/merkle.py), written with the events (merkle_log.py). Append-only
    and hashes only: retention deletes audit rows, not these, so proofs outlive the rows.

    Level 0 rows are the leaves, and name their audit event (`audit_id`), so that a proof can
    be asked for by event id after retention deleted the event's row.
    """

    __tablename__ = "audit_merkle_nodes"
    __table_args__ = (
        Index(
            "ix_audit_merkle_nodes_tenant_audit",
            "tenant_id",
            "audit_id",
            postgresql_where=text("level = 0"),
            sqlite_where=text("level = 0"),
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    audit_id: Mapped[UUID | None] = mapped_column()
