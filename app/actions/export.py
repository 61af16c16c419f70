"""Export of every action matching the list filters, as CSV or NDJSON, streamed.

Rows are read in keyset-paged chunks of `CHUNK_SIZE`, each in its own short session, so the
server holds one chunk at a time whatever the size of the export, and a slow download does not
keep a database connection. NDJSON lines are the records exactly as `GET /actions/{id}` returns
them; CSV has a header row, one column per field, JSON fields as compact JSON text and empty
cells for nulls.

An export never ends silently short. Every parameter is validated, and the first chunk read,
before the first byte is sent, so a bad request or an unreachable database is an ordinary 4xx
or 503. An error after that raises out of the stream: the server then drops the connection
without the chunked encoding's last chunk, which every HTTP client reports as a failed
download (an incomplete body), never as a clean end of file.
"""

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.actions.filters import ActionFilter
from app.actions.models import ACTION_COLUMNS
from app.actions.repository import ActionRepository
from app.actions.schemas import ActionRead
from app.core.db import json_text, utcnow
from app.core.pagination import Cursor, Order
from app.core.tenancy import tenant_session

ExportFormat = Literal["csv", "ndjson"]
CHUNK_SIZE = 1000
# one CSV column per field of a record, in table order
COLUMNS = tuple(name for name in ACTION_COLUMNS if name in ActionRead.model_fields)
JSON_COLUMNS = frozenset({"request_payload", "response_data", "metadata", "steps", "schema_errors"})
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
        self.chunk_size = CHUNK_SIZE

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    @property
    def filename(self) -> str:
        return f"action-logs-{utcnow():%Y%m%dT%H%M%SZ}.{self.format}"

    async def open(self) -> AsyncIterator[bytes]:
        """The body, with its first chunk already read and rendered (errors raise here)."""
        first = await self._chunk(None)
        head = self._render(first)
        if self.format == "csv":
            head = _csv_rows([COLUMNS]) + head
        return self._stream(head, first)

    async def _stream(self, head: bytes, first: list[ActionRead]) -> AsyncIterator[bytes]:
        yield head
        records = first
        while len(records) == self.chunk_size:
            records = await self._chunk(
                Cursor(created_at=records[-1].created_at, id=records[-1].id)
            )
            if records:
                yield self._render(records)

    def _render(self, records: list[ActionRead]) -> bytes:
        if self.format == "csv":
            return _csv_rows(_csv_record(record) for record in records)
        return b"".join(record.model_dump_json().encode() + b"\n" for record in records)

    async def _chunk(self, cursor: Cursor | None) -> list[ActionRead]:
        async with tenant_session(self.sessionmaker, self.tenant_id) as session:
            rows = await ActionRepository(session, self.tenant_id).list_full(
                self.filter, limit=self.chunk_size, order=self.order, cursor=cursor
            )
            return [ActionRead.model_validate(row) for row in rows]


def _csv_record(record: ActionRead) -> list[object]:
    data = record.model_dump(mode="json")
    return [
        json_text(data[name])
        if name in JSON_COLUMNS
        else ("" if data[name] is None else data[name])
        for name in COLUMNS
    ]


def _csv_rows(rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()
