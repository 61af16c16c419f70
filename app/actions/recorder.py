"""Recording actions without an idempotency key: build the rows, write them, answer.

This is the path of nearly every recorded action, so it needs no session: a `Recorder` hands
its rows to a `RowStore`, which commits them before returning — the group-commit writer on
PostgreSQL, a transaction of its own on SQLite (`app/actions/writer.py`), or the caller's
session when several writes must share one transaction (`SessionStore`, for demo data).
Both the routes and the ingest lane record through here.
"""

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.idempotency import Written
from app.actions.repository import insert_actions
from app.actions.rows import RowBuilder
from app.actions.schemas import ActionCreate, ActionRead, BatchCreated


class RowStore(Protocol):
    async def write(self, tenant_id: UUID, rows: list[dict[str, Any]]) -> None:
        """Insert the tenant's rows (and their rollups); committed on return unless stated."""
        ...


class SessionStore:
    """Rows written in a session's transaction; whoever owns the session commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def write(self, tenant_id: UUID, rows: list[dict[str, Any]]) -> None:
        await insert_actions(await self.session.connection(), [(tenant_id, rows)])


@dataclass(frozen=True)
class Prepared:
    """Rows ready to be written, and the answer to give once they are."""

    rows: list[dict[str, Any]]
    written: Written


class Recorder:
    """Records one tenant's actions through a row store."""

    def __init__(self, tenant_id: UUID, rows: RowBuilder, store: RowStore) -> None:
        self.tenant_id = tenant_id
        self.rows = rows
        self.store = store

    def prepare(self, data: ActionCreate) -> Prepared:
        """The row of one body and its answer (the stored record), or a 422 naming fields."""
        cleaner = self.rows.cleaner()
        row = self.rows.row(data, self.rows.clock(), cleaner, ())
        cleaner.raise_errors()
        record = ActionRead.model_validate({**row, "tenant_id": self.tenant_id})
        return Prepared([row], Written(201, record.model_dump(mode="json")))

    def prepare_batch(self, items: list[ActionCreate]) -> Prepared:
        """The rows of a batch and its answer; one invalid item is a 422 naming its index."""
        now, cleaner = self.rows.clock(), self.rows.cleaner()
        rows = [self.rows.row(item, now, cleaner, (i,)) for i, item in enumerate(items)]
        cleaner.raise_errors()
        created = BatchCreated(created=len(rows), ids=[row["id"] for row in rows])
        return Prepared(rows, Written(201, created.model_dump(mode="json")))

    async def write(self, prepared: Prepared) -> Written:
        await self.store.write(self.tenant_id, prepared.rows)
        return prepared.written

    async def record(self, data: ActionCreate) -> Written:
        """Store one action; the answer is the stored record (secrets redacted)."""
        return await self.write(self.prepare(data))

    async def record_batch(self, items: list[ActionCreate]) -> Written:
        """Store every item or none."""
        return await self.write(self.prepare_batch(items))
