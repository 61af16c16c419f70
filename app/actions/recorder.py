"""Recording actions without an idempotency key: build the rows, write them, answer.

This is the path of nearly every recorded action, so it needs no session: a `Recorder` hands
its rows to a `RowStore`, which commits them before returning — the group-commit writer on
PostgreSQL, a transaction of its own on SQLite (`app/actions/writer.py`), or the caller's
session when several writes must share one transaction (`SessionStore`, for demo data).
Both the routes and the ingest lane record through here.

A client may send its own ids (`id` in the body) so that retrying a write can never store it
twice: before writing, the tenant's ids are looked up; an id already recorded by this tenant
with the same body is answered as a replay (`Idempotent-Replayed: true`), with another body
(or by the server) a 409 naming the item. A batch mixing both stores only the new rows. Ids
are unique per tenant (the key is `(tenant_id, id)`, as a database sharded by tenant needs):
another tenant's row with the same id is unrelated and never seen. Two concurrent writes of
the same id are settled by the primary key: the loser looks again and finds the winner's row.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.repository import Claim, find_claims, find_record, insert_actions
from app.actions.rows import RowBuilder
from app.actions.schemas import ActionCreate, ActionRead, BatchCreated
from app.core import metrics
from app.core.errors import Conflict, ServiceError, invalid
from app.core.idempotency import Written


class RowStore(Protocol):
    async def write(self, tenant_id: UUID, rows: list[dict[str, Any]]) -> None:
        """Insert the tenant's rows (and their rollups); committed on return unless stated."""
        ...

    async def claims(self, tenant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, Claim]:
        """Which of these action ids the tenant holds already (for client-generated ids)."""
        ...

    async def record(self, tenant_id: UUID, action_id: UUID) -> dict[str, Any] | None:
        """One stored row of the tenant (to replay a retried write)."""
        ...


class SessionStore:
    """Rows written in a session's transaction; whoever owns the session commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def write(self, tenant_id: UUID, rows: list[dict[str, Any]]) -> None:
        await insert_actions(await self.session.connection(), [(tenant_id, rows)])
        metrics.ACTIONS_RECORDED.inc(len(rows))  # committed by the request's session

    async def claims(self, tenant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, Claim]:
        return await find_claims(await self.session.connection(), tenant_id, ids)

    async def record(self, tenant_id: UUID, action_id: UUID) -> dict[str, Any] | None:
        return await find_record(await self.session.connection(), tenant_id, action_id)


@dataclass(frozen=True)
class Prepared:
    """Rows ready to be written, and the answer to give once they are."""

    rows: list[dict[str, Any]]
    written: Written
    batch: bool = False

    @property
    def client_ids(self) -> bool:
        return any(row["request_hash"] is not None for row in self.rows)


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
        if self.rows.checks is not None:
            self.rows.checks.check(self.tenant_id, [row], batch=False)
        record = ActionRead.model_validate({**row, "tenant_id": self.tenant_id})
        return Prepared([row], Written(201, record.model_dump(mode="json")))

    def prepare_batch(self, items: list[ActionCreate]) -> Prepared:
        """The rows of a batch and its answer; one invalid item is a 422 naming its index."""
        now, cleaner = self.rows.clock(), self.rows.cleaner()
        rows = [self.rows.row(item, now, cleaner, (i,)) for i, item in enumerate(items)]
        cleaner.raise_errors()
        if self.rows.checks is not None:
            self.rows.checks.check(self.tenant_id, rows, batch=True)
        _refuse_repeated_ids(items)
        created = BatchCreated(created=len(rows), ids=[row["id"] for row in rows])
        return Prepared(rows, Written(201, created.model_dump(mode="json")), batch=True)

    async def write(self, prepared: Prepared) -> Written:
        """Write the prepared rows; with client ids, a retry is answered as a replay."""
        if not prepared.client_ids:
            await self.store.write(self.tenant_id, prepared.rows)
            return prepared.written
        try:
            return await self._write_unstored(prepared)
        except ServiceError:
            raise
        except Exception:
            # A concurrent write of the same ids may have committed first: look again, once.
            return await self._write_unstored(prepared)

    async def _write_unstored(self, prepared: Prepared) -> Written:
        fresh = await self._unstored(prepared)
        if fresh:
            await self.store.write(self.tenant_id, fresh)
        if len(fresh) == len(prepared.rows):
            return prepared.written
        if prepared.batch:
            return replace(prepared.written, replayed=not fresh)
        stored = await self.store.record(self.tenant_id, prepared.rows[0]["id"])
        assert stored is not None, "a claimed id of the tenant is stored"
        body = ActionRead.model_validate(stored).model_dump(mode="json")
        return Written(201, body, replayed=True)

    async def _unstored(self, prepared: Prepared) -> list[dict[str, Any]]:
        """The rows not stored yet; a 409 naming each id the tenant holds for another body."""
        claims = await self.store.claims(self.tenant_id, [row["id"] for row in prepared.rows])
        fresh, conflicts = [], []
        for index, row in enumerate(prepared.rows):
            claim = claims.get(row["id"])
            if claim is None:
                fresh.append(row)
            elif claim.request_hash is None:
                conflicts.append((index, f"action id {row['id']} is already in use"))
            elif claim.request_hash != row["request_hash"]:
                message = f"action {row['id']} was already recorded with a different body"
                conflicts.append((index, message))
        if conflicts:
            raise Conflict(
                [
                    {
                        "type": "conflict",
                        "loc": ["body", index, "id"] if prepared.batch else ["body", "id"],
                        "msg": message,
                    }
                    for index, message in conflicts
                ]
            )
        return fresh

    async def record(self, data: ActionCreate) -> Written:
        """Store one action; the answer is the stored record (secrets redacted)."""
        return await self.write(self.prepare(data))

    async def record_batch(self, items: list[ActionCreate]) -> Written:
        """Store every item or none."""
        return await self.write(self.prepare_batch(items))


def _refuse_repeated_ids(items: list[ActionCreate]) -> None:
    seen: set[UUID] = set()
    for index, item in enumerate(items):
        if item.id is not None:
            if item.id in seen:
                raise invalid(("body", index, "id"), f"id {item.id} appears twice in the batch")
            seen.add(item.id)
