"""Idempotency keys: a write sent with an `Idempotency-Key` happens once per tenant and key.

The first response is stored with the key, in the same transaction as the rows it describes,
and replayed (same status, same body) when the write is retried; the same key with a different
request is a conflict. The key is claimed before the rows are written, with an
INSERT ... ON CONFLICT DO NOTHING: a concurrent duplicate waits on the key's primary key until
the first request commits, finds the key taken, and replays the stored response instead of
writing. Keys are kept for `idempotency_ttl_hours`; an expired key may be used again.

A write whose response is known only once its rows are stored (an audit row gets its place in
the chain then) claims the key with a placeholder and `settle`s it in the same transaction, so
no other request ever sees the placeholder. Actions and audit events share the keys (and the
table): in core, so that both domains use one implementation.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, cast
from uuid import UUID

import orjson
from fastapi import Header, Response
from sqlalchemy import CursorResult, ForeignKey, Index, Integer, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, upsert_insert, utcnow
from app.core.errors import Conflict
from app.core.responses import RowsResponse

# The `Idempotency-Key` header of a write (a parameter named `idempotency_key`).
IdempotencyHeader = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        description=(
            "Makes retries safe: a retry returns the first response (with "
            "`Idempotent-Replayed: true`) and stores nothing new; another body is a 409"
        ),
    ),
]


class IdempotencyKey(Base):
    """The first response to a write sent with an `Idempotency-Key`, replayed on retries."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)

    tenant_id: Mapped[UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[Any] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class Written:
    """The response to a write: fresh, or replayed from its idempotency key."""

    status_code: int
    body: Any
    replayed: bool = False

    def response(self) -> Response:
        """The HTTP answer: the body as stored, marked when it is a replay."""
        headers = {"Idempotent-Replayed": "true"} if self.replayed else None
        return RowsResponse(self.body, status_code=self.status_code, headers=headers)


def request_hash(operation: str, payload: Any) -> str:
    """A fingerprint of a validated request: key order and spacing do not change it."""
    content = {"op": operation, "body": payload}
    try:
        canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits: the standard library writes them exactly
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


class IdempotencyRepository:
    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def find_live(self, key: str, now: datetime) -> IdempotencyKey | None:
        """The stored key, or None; an expired key is deleted so that it can be used again."""
        stored = await self.session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.tenant_id == self.tenant_id, IdempotencyKey.key == key
            )
        )
        if stored is not None and stored.expires_at <= now:
            await self.session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.tenant_id == self.tenant_id, IdempotencyKey.key == key
                )
            )
            self.session.expunge(stored)
            return None
        return stored

    async def claim(
        self, key: str, fingerprint: str, written: Written, now: datetime, expires_at: datetime
    ) -> bool:
        """Store the response under `key`; False when another request holds the key."""
        statement = (
            upsert_insert(self.session.get_bind().dialect.name, IdempotencyKey)
            .values(
                tenant_id=self.tenant_id,
                key=key,
                request_hash=fingerprint,
                status_code=written.status_code,
                response_body=written.body,
                created_at=now,
                expires_at=expires_at,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
        )
        result = cast(CursorResult[Any], await self.session.execute(statement))
        return result.rowcount == 1

    async def settle(self, key: str, written: Written) -> None:
        """Replace the response claimed under `key` (in this transaction) with the final one."""
        await self.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.tenant_id == self.tenant_id, IdempotencyKey.key == key)
            .values(status_code=written.status_code, response_body=written.body)
            .execution_options(synchronize_session=False)
        )


class IdempotencyGuard:
    """One write's idempotency: replay a previous response, or claim the key for this one.

    With no key (and then no repository), both steps let the write go ahead.
    """

    def __init__(
        self,
        keys: IdempotencyRepository | None,
        key: str | None,
        fingerprint: str,
        now: datetime,
        ttl_hours: int,
    ) -> None:
        self.keys = keys
        self.key = key
        self.fingerprint = fingerprint
        self.now = now
        self.expires_at = now + timedelta(hours=ttl_hours)

    async def previous(self) -> Written | None:
        """The stored response when this key was already used, else None."""
        if self.key is None or self.keys is None:
            return None
        stored = await self.keys.find_live(self.key, self.now)
        return None if stored is None else self._replay(stored)

    async def claim(self, written: Written) -> Written | None:
        """Claim the key with this response (None), or the winner's response after a race."""
        if self.key is None or self.keys is None:
            return None
        if await self.keys.claim(self.key, self.fingerprint, written, self.now, self.expires_at):
            return None
        stored = await self.keys.find_live(self.key, self.now)
        if stored is None:
            raise Conflict("Another request with this Idempotency-Key is in progress; retry")
        return self._replay(stored)

    async def settle(self, written: Written) -> None:
        """Store the final response of a write that claimed the key with a placeholder."""
        if self.key is not None and self.keys is not None:
            await self.keys.settle(self.key, written)

    def _replay(self, stored: IdempotencyKey) -> Written:
        if stored.request_hash != self.fingerprint:
            raise Conflict(
                f"Idempotency-Key '{self.key}' was already used with a different request body"
            )
        return Written(stored.status_code, stored.response_body, replayed=True)
