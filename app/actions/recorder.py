"""Recording actions: build the rows of a body, write them, answer (app/core/recording.py).

Nearly every recorded action comes through here without a session: a `Recorder` hands its rows
to the worker's writer (app/core/writer.py: group commit on PostgreSQL, a transaction of its
own on SQLite) with `ACTION_ROWS`, which says how action rows go in. A write sent with an
`Idempotency-Key`, and demo data, take the same path with a writer on a session
(`session_recorder`), whose owner commits.

A client may send its own ids (`id` in the body) so that retrying a write can never store it
twice: before writing, the tenant's ids are looked up; an id already recorded by this tenant
with the same body is answered as a replay (`Idempotent-Replayed: true`), with another body
(or by the server) a 409 naming the item. A batch mixing both stores only the new rows. Ids
are unique per tenant (the key is `(tenant_id, id)`, as a database sharded by tenant needs):
another tenant's row with the same id is unrelated and never seen. Two concurrent writes of
the same id are settled by the primary key: the loser looks again and finds the winner's row.
"""

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.actions.repository import Claim, find_claims, find_record, insert_actions
from app.actions.rows import RowBuilder
from app.actions.schemas import ActionCreate, ActionRead, BatchCreated
from app.core import metrics
from app.core.errors import Conflict, ServiceError, invalid
from app.core.idempotency import Written, request_hash
from app.core.recording import Prepared
from app.core.tenancy import tenant_connection
from app.core.writer import Kind, SessionWriter, Writer
from app.streamlog import record as streamlog

Row = dict[str, Any]
ActionWriter = Writer[Row, None]
PreparedRows = Prepared[Row, None]


async def _insert(
    connection: AsyncConnection, writes: Sequence[tuple[UUID, Sequence[Row]]], *, announce_now: bool
) -> list[None]:
    await insert_actions(connection, writes, announce_now=announce_now)
    return [None] * len(writes)


# How action rows go in (with their rollups and stream events), for every writer.
ACTION_ROWS: Kind[Row, None] = Kind(
    _insert,
    streamlog.announce,
    metrics.ACTIONS_RECORDED,
    metrics.GROUP_ROWS,
    metrics.GROUP_SECONDS,
)


class ClaimReads(Protocol):
    async def claims(self, tenant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, Claim]:
        """Which of these action ids the tenant holds already (for client-generated ids)."""
        ...

    async def record(self, tenant_id: UUID, action_id: UUID) -> Row | None:
        """One stored row of the tenant (to replay a retried write)."""
        ...


class EngineReads:
    """The reads of client-generated ids, each on a short connection of the tenant's."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def claims(self, tenant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, Claim]:
        async with tenant_connection(self.engine, tenant_id) as connection:
            return await find_claims(connection, tenant_id, ids)

    async def record(self, tenant_id: UUID, action_id: UUID) -> Row | None:
        async with tenant_connection(self.engine, tenant_id) as connection:
            return await find_record(connection, tenant_id, action_id)


class SessionReads:
    """The same reads in a session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claims(self, tenant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, Claim]:
        return await find_claims(await self.session.connection(), tenant_id, ids)

    async def record(self, tenant_id: UUID, action_id: UUID) -> Row | None:
        return await find_record(await self.session.connection(), tenant_id, action_id)


def _answered(written: Written) -> Callable[[None], Written]:
    return lambda _stored: written


class Recorder:
    """Records one tenant's actions through a writer."""

    def __init__(
        self, tenant_id: UUID, rows: RowBuilder, writer: ActionWriter, reads: ClaimReads
    ) -> None:
        self.tenant_id = tenant_id
        self.rows = rows
        self.writer = writer
        self.reads = reads

    def prepare(self, body: ActionCreate) -> PreparedRows:
        """The row of one body and its answer (the stored record), or a 422 naming fields."""
        cleaner = self.rows.cleaner()
        row = self.rows.row(body, self.rows.clock(), cleaner, ())
        cleaner.raise_errors()
        if self.rows.checks is not None:
            self.rows.checks.check(self.tenant_id, [row], batch=False)
        written = Written(201, record_body(row, self.tenant_id))
        return Prepared([row], _answered(written), partial(_fingerprint, "create", [body]))

    def prepare_batch(self, body: list[ActionCreate]) -> PreparedRows:
        """The rows of a batch and its answer; one invalid item is a 422 naming its index."""
        now, cleaner = self.rows.clock(), self.rows.cleaner()
        rows = [self.rows.row(item, now, cleaner, (i,)) for i, item in enumerate(body)]
        cleaner.raise_errors()
        if self.rows.checks is not None:
            self.rows.checks.check(self.tenant_id, rows, batch=True)
        _refuse_repeated_ids(body)
        created = BatchCreated(created=len(rows), ids=[row["id"] for row in rows])
        written = Written(201, created.model_dump(mode="json"))
        fingerprint = partial(_fingerprint, "batch", body)
        return Prepared(rows, _answered(written), fingerprint, batch=True)

    async def write(self, prepared: PreparedRows) -> Written:
        """Write the prepared rows; with client ids, a retry is answered as a replay."""
        if not any(row["request_hash"] is not None for row in prepared.items):
            await self.writer.write(self.tenant_id, prepared.items)
            return prepared.answer(None)
        try:
            return await self._write_unstored(prepared)
        except ServiceError:
            raise
        except Exception:
            # A concurrent write of the same ids may have committed first: look again, once.
            return await self._write_unstored(prepared)

    async def _write_unstored(self, prepared: PreparedRows) -> Written:
        fresh = await self._unstored(prepared)
        if fresh:
            await self.writer.write(self.tenant_id, fresh)
        written = prepared.answer(None)
        if len(fresh) == len(prepared.items):
            return written
        if prepared.batch:
            return replace(written, replayed=not fresh)
        stored = await self.reads.record(self.tenant_id, prepared.items[0]["id"])
        assert stored is not None, "a claimed id of the tenant is stored"
        body = ActionRead.model_validate(stored).model_dump(mode="json")
        return Written(201, body, replayed=True)

    async def _unstored(self, prepared: PreparedRows) -> list[Row]:
        """The rows not stored yet; a 409 naming each id the tenant holds for another body."""
        claims = await self.reads.claims(self.tenant_id, [row["id"] for row in prepared.items])
        fresh, conflicts = [], []
        for index, row in enumerate(prepared.items):
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

    async def record(self, body: ActionCreate) -> Written:
        """Store one action; the answer is the stored record (secrets redacted)."""
        return await self.write(self.prepare(body))

    async def record_batch(self, body: list[ActionCreate]) -> Written:
        """Store every item or none."""
        return await self.write(self.prepare_batch(body))


# The answer to a recorded action is its record as `ActionRead` shows it. The row was built
# from a validated body and holds nothing to check again, so the answer is made from it
# directly (validating and dumping it as an `ActionRead` cost about as much as building the
# row's payloads): ids as text, times in the form pydantic writes them (tests/actions compare
# the answer with the record read back).
_READ_FIELDS = tuple(ActionRead.model_fields)
_IDS = ("id", "parent_id")
_TIMES = ("started_at", "completed_at", "created_at", "updated_at")


def record_body(row: Row, tenant_id: UUID) -> dict[str, Any]:
    """The JSON body of `ActionRead` for a row just built (not yet stored)."""
    body: dict[str, Any] = {name: row.get(name) for name in _READ_FIELDS}
    body["tenant_id"] = str(tenant_id)
    for name in _IDS:
        if body[name] is not None:
            body[name] = str(body[name])
    for name in _TIMES:
        if body[name] is not None:
            body[name] = body[name].isoformat().replace("+00:00", "Z")
    return body


def session_recorder(tenant_id: UUID, rows: RowBuilder, session: AsyncSession) -> Recorder:
    """A recorder whose writes go into the session's transaction (its owner commits)."""
    return Recorder(tenant_id, rows, SessionWriter(session, ACTION_ROWS), SessionReads(session))


def _fingerprint(operation: str, items: list[ActionCreate]) -> str:
    return request_hash(operation, [item.model_dump(mode="json") for item in items])


def _refuse_repeated_ids(items: list[ActionCreate]) -> None:
    seen: set[UUID] = set()
    for index, item in enumerate(items):
        if item.id is not None:
            if item.id in seen:
                raise invalid(("body", index, "id"), f"id {item.id} appears twice in the batch")
            seen.add(item.id)
