"""Reading archive files back: their records as readers see them, or as stored.

An archive file holds the stored rows (app/retention/archive.py): a sealed audit row keeps the
placeholders and digests of its personal fields and their ciphertext (`sealed`), which is what
the chain hashes and `verify-archive` checks. Readers are shown what the list routes show
instead: each sealed field opened with its subject's key while the key exists, `"[ERASED]"`
once the subject is erased (app/subjects/sealing.py), and no ciphertext. Actions and unsealed
audit rows read as stored.

`actionlog archive cat` prints a file this way, a page of PAGE rows at a time (one parse, and
for a page with sealed rows one read of its subjects' keys, so a file of any size is read in
bounded memory); `--stored` prints the lines as they are, with no database.
`GET /api/v1/retention/archives/{id}/records` serves one page of a tenant's recorded file.
"""

import asyncio
import contextlib
import itertools
import json
import zlib
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.core.db import create_engine
from app.core.errors import Conflict, NotFound
from app.core.pagination import LineCursor
from app.core.tenancy import tenant_connection
from app.retention.archive import read_lines
from app.retention.repository import ArchiveRepository
from app.subjects.repository import Handle
from app.subjects.sealing import open_rows

PAGE = 1000
SEALED = "sealed"  # the column of a sealed row's ciphertext
Row = dict[str, Any]


class ArchiveUnreadable(ValueError):
    """An archive file that is missing, not gzip, or not one JSON row per line."""


def archive_path(archive_dir: Path, name: str) -> Path:
    """The file `name` names: a path, or one relative to ARCHIVE_DIR."""
    path = Path(name)
    if not path.exists() and (archive_dir / path).exists():
        path = archive_dir / path
    if not path.is_file():
        raise ArchiveUnreadable(f"archive file '{name}' not found")
    return path


def stored_lines(path: Path, name: str) -> Generator[bytes, None, None]:
    """The file's NDJSON lines as stored."""
    try:
        yield from read_lines(path)  # closing this generator closes the file
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveUnreadable(f"'{name}' is not a readable gzip archive: {exc}") from None


def stored_rows(path: Path, name: str, skip: int = 0) -> Generator[Row, None, None]:
    """The file's rows after the first `skip`, as stored."""
    with contextlib.closing(stored_lines(path, name)) as lines:
        for number, line in enumerate(itertools.islice(lines, skip, None), skip + 1):
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict):
                raise ArchiveUnreadable(f"'{name}' line {number} is not a JSON row")
            yield row


async def readable(handle: Handle, tenant_id: UUID, rows: Sequence[Row]) -> list[Row]:
    """The archived rows of one tenant as readers see them: sealed fields opened, or
    "[ERASED]"; the ciphertext left out. Rows without sealed fields come back as stored."""
    if not any(row.get(SEALED) for row in rows):
        return [_without_ciphertext(row) for row in rows]
    try:
        keyed = [{**row, "id": UUID(row["id"])} if row.get(SEALED) else row for row in rows]
    except (KeyError, TypeError, ValueError):
        raise ArchiveUnreadable("a sealed row of the archive has no valid id") from None
    opened = await open_rows(handle, tenant_id, keyed)
    return [
        _without_ciphertext({**plain, "id": row["id"]})
        for plain, row in zip(opened, rows, strict=True)
    ]


def _without_ciphertext(row: Row) -> Row:
    if SEALED not in row:
        return row
    return {name: value for name, value in row.items() if name != SEALED}


def _line(row: Row) -> bytes:
    return (json.dumps(row, separators=(",", ":")) + "\n").encode()


async def cat_archive(settings: Settings, name: str, *, stored: bool, out: BinaryIO) -> None:
    """`actionlog archive cat`: the file's records as readers see them, one JSON line each;
    `stored`: its lines as they are."""
    path = archive_path(settings.archive_dir, name)
    if stored:
        for line in stored_lines(path, name):
            out.write(line)
        out.flush()
        return
    opener = _Opener(settings)
    try:
        with contextlib.closing(stored_rows(path, name)) as rows:
            while page := list(itertools.islice(rows, PAGE)):
                out.write(b"".join(_line(row) for row in await opener.shown(page)))
    finally:
        await opener.close()
    out.flush()


class _Opener:
    """Shows pages of archived rows; connects to the database at the first sealed row (a file
    without any is read with no database)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine | None = None

    async def shown(self, page: list[Row]) -> list[Row]:
        if not any(row.get(SEALED) for row in page):
            return [_without_ciphertext(row) for row in page]
        if self.engine is None:
            self.engine = create_engine(self.settings, as_owner=True)
        out: list[Row] = []
        # a file holds one tenant's rows; each is opened as its tenant, under row-level security
        for tenant, group in itertools.groupby(page, key=lambda row: row.get("tenant_id")):
            try:
                tenant_id = UUID(str(tenant))
            except ValueError:
                raise ArchiveUnreadable(f"a row has no valid tenant_id: {tenant!r}") from None
            async with tenant_connection(self.engine, tenant_id) as connection:
                out += await readable(connection, tenant_id, list(group))
        return out

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()


async def archive_page(
    session: AsyncSession,
    archive_dir: Path,
    tenant_id: UUID,
    archive_id: UUID,
    cursor: str | None,
    limit: int,
) -> tuple[list[Row], LineCursor | None]:
    """A page of one of the tenant's archive files as readers see it, and the next page's
    cursor (None on the last). Another tenant's archive is not found; a file that is not on
    this host, or not readable, is a conflict naming it."""
    record = await ArchiveRepository(session, tenant_id).get(archive_id)
    if record is None:
        raise NotFound(f"archive {archive_id} not found")
    after = LineCursor.decode(cursor, record.row_count).rows if cursor else 0
    path = archive_dir / record.path
    if not path.is_file():
        raise Conflict(
            f"the file of archive {archive_id} ({record.path}) is not in ARCHIVE_DIR on this "
            f"host; it was written on {record.host}"
        )
    try:
        rows = await asyncio.to_thread(_read_page, path, record.path, after, limit + 1)
        page = await readable(session, tenant_id, rows[:limit])
    except ArchiveUnreadable as exc:
        raise Conflict(f"the file of archive {archive_id} cannot be read: {exc}") from None
    return page, LineCursor(after + limit) if len(rows) > limit else None


def _read_page(path: Path, name: str, skip: int, count: int) -> list[Row]:
    with contextlib.closing(stored_rows(path, name, skip)) as rows:
        return list(itertools.islice(rows, count))
