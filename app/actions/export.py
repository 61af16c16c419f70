"""Export of every action matching the list filters, as CSV or NDJSON, streamed.

Rows are read in keyset-paged chunks of `CHUNK_SIZE`, each in its own short session, so the
server holds one chunk at a time whatever the size of the export, and a slow download does not
keep a database connection. NDJSON lines are the records exactly as `GET /actions/{id}` returns
them; CSV has a header row, one column per field, JSON fields as compact JSON text and empty
cells for nulls.
"""

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Literal
from uuid import UUID

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.actions.filters import ActionFilter
from app.actions.models import ACTION_COLUMNS
from app.actions.repository import ActionRepository
from app.actions.schemas import ActionRead
from app.core.db import utcnow
from app.core.pagination import Cursor, Order

ExportFormat = Literal["csv", "ndjson"]
CHUNK_SIZE = 1000
# one CSV column per field of a record, in table order
COLUMNS = tuple(name for name in ACTION_COLUMNS if name in ActionRead.model_fields)
JSON_COLUMNS = frozenset({"request_payload", "response_data", "metadata", "steps"})
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


class ActionExport:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        tenant_id: UUID,
        f: ActionFilter,
        order: Order,
        fmt: ExportFormat,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.tenant_id = tenant_id
        self.filter = f
        self.order = order
        self.format = fmt

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    @property
    def filename(self) -> str:
        return f"action-logs-{utcnow():%Y%m%dT%H%M%SZ}.{self.format}"

    async def stream(self) -> AsyncIterator[bytes]:
        if self.format == "csv":
            yield _csv_rows([COLUMNS])
        async for records in self._chunks():
            if self.format == "csv":
                yield _csv_rows(_csv_record(record) for record in records)
            else:
                yield b"".join(record.model_dump_json().encode() + b"\n" for record in records)

    async def _chunks(self) -> AsyncIterator[list[ActionRead]]:
        cursor: Cursor | None = None
        while True:
            size = CHUNK_SIZE
            async with self.sessionmaker() as session:
                rows = await ActionRepository(session, self.tenant_id).list_full(
                    self.filter, limit=size, order=self.order, cursor=cursor
                )
                records = [ActionRead.model_validate(row) for row in rows]
            if records:
                yield records
            if len(records) < size:
                return
            cursor = Cursor(created_at=records[-1].created_at, id=records[-1].id)


def _csv_record(record: ActionRead) -> list[object]:
    data = record.model_dump(mode="json")
    return [
        orjson.dumps(data[name]).decode()
        if name in JSON_COLUMNS
        else ("" if data[name] is None else data[name])
        for name in COLUMNS
    ]


def _csv_rows(rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()
