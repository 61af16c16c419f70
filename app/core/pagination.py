"""Keyset pagination: opaque cursors (over (created_at, id), over a chain sequence, or a position
in an archive file), and the next-page headers.

Whatever a cursor holds is checked as a parameter would be (timestamps in the accepted range,
integers in their column's range): a forged cursor is a 400, never an error in the query.
A cursor names the last row of a page; the next page starts strictly after it, so page
10,000 costs what page 1 costs. Lists return plain JSON arrays, and the next page travels
in `X-Next-Cursor` and `Link: <...>; rel="next"` (absent on the last page).
"""

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar
from urllib.parse import urlencode
from uuid import UUID

from fastapi import Query, Request, Response
from sqlalchemy import ColumnElement, literal, tuple_

from app.core.errors import BadRequest
from app.core.inputs import MAX_INT32, in_time_range
from app.core.state import core_state

Order = Literal["desc", "asc"]
OrderParam = Annotated[Order, Query(description="desc (newest first, the default) or asc")]
T = TypeVar("T")


class PageCursor(Protocol):
    """Anything that names the last row of a page as an opaque token."""

    def encode(self) -> str: ...


def _encode(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str, parse: Callable[[Any], T], what: str) -> T:
    """`parse` of the JSON inside `token`; a 400 naming `what` when anything is wrong with it."""
    try:
        return parse(json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))))
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, binascii.Error):
        raise BadRequest(
            f"cursor is malformed; pass the X-Next-Cursor of a previous page{what}"
        ) from None


@dataclass(frozen=True)
class Cursor:
    """The position of a row in (created_at, id) order: listings of actions and audits."""

    created_at: datetime
    id: UUID

    def encode(self) -> str:
        return _encode({"t": self.created_at.isoformat(), "i": str(self.id)})

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        def parse(data: Any) -> Cursor:
            created_at = datetime.fromisoformat(data["t"])
            if created_at.tzinfo is None:
                raise ValueError("naive timestamp")
            return cls(created_at=in_time_range(created_at), id=UUID(data["i"]))

        return _decode(token, parse, "")

    @classmethod
    def of(cls, row: Any) -> "Cursor":
        return cls(created_at=row.created_at, id=row.id)


@dataclass(frozen=True)
class DurationCursor:
    """The position of a row in (execution_time_ms, id) order: the slowest actions first."""

    execution_time_ms: int
    id: UUID

    def encode(self) -> str:
        return _encode({"d": self.execution_time_ms, "i": str(self.id)})

    @classmethod
    def decode(cls, token: str) -> "DurationCursor":
        def parse(data: Any) -> DurationCursor:
            duration = data["d"]
            if type(duration) is not int or not 0 <= duration <= MAX_INT32:
                raise ValueError("bad duration")
            return cls(execution_time_ms=duration, id=UUID(data["i"]))

        return _decode(token, parse, " sorted the same way")

    @classmethod
    def of(cls, row: Any) -> "DurationCursor":
        return cls(execution_time_ms=row.execution_time_ms, id=row.id)


@dataclass(frozen=True)
class SequenceCursor:
    """The position of a row in a tenant's audit chain: a resource's trail is read in chain
    order, so its pages are cut by `sequence`, which is unique per tenant and never reused."""

    sequence: int

    def encode(self) -> str:
        return _encode({"s": self.sequence})

    @classmethod
    def decode(cls, token: str) -> "SequenceCursor":
        def parse(data: Any) -> SequenceCursor:
            sequence = data["s"]
            if type(sequence) is not int or not 0 <= sequence < 2**63:
                raise ValueError("bad sequence")
            return cls(sequence=sequence)

        return _decode(token, parse, " of this trail")


@dataclass(frozen=True)
class LineCursor:
    """The number of rows of a file already read: an archive file never changes once written,
    so a position in it is as stable as a key."""

    rows: int

    def encode(self) -> str:
        return _encode({"r": self.rows})

    @classmethod
    def decode(cls, token: str, total: int) -> "LineCursor":
        """The cursor of a file of `total` rows; a 400 for a position outside it."""

        def parse(data: Any) -> LineCursor:
            rows = data["r"]
            if type(rows) is not int or not 0 < rows < total:
                raise ValueError("outside the file")
            return cls(rows=rows)

        return _decode(token, parse, " of this archive")


def after_cursor(
    created_at: Any, id_: Any, cursor: Cursor, order: Order = "desc"
) -> ColumnElement[bool]:
    """Rows strictly after `cursor` in (created_at, id) order (newest first for desc).

    A row-value comparison, so PostgreSQL and SQLite walk the (tenant, created_at, id) index.
    """
    return after_key((created_at, id_), (cursor.created_at, cursor.id), order)


def after_key(
    columns: tuple[Any, Any], values: tuple[Any, Any], order: Order = "desc"
) -> ColumnElement[bool]:
    """Rows strictly after the key `values` in the order of `columns` (a row-value comparison)."""
    row = tuple_(*columns)
    bound = tuple_(*(literal(v, c.type) for c, v in zip(columns, values, strict=True)))
    return row < bound if order == "desc" else row > bound


PAGED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A page of rows (a JSON array); the next page's cursor in the headers",
        "headers": {
            "X-Next-Cursor": {
                "description": "Pass as `cursor` to get the next page; absent on the last page",
                "schema": {"type": "string"},
            },
            "Link": {
                "description": 'The next page\'s URL, `<…>; rel="next"`; absent on the last page',
                "schema": {"type": "string"},
            },
        },
    }
}


def set_next_page(request: Request, response: Response, next_cursor: PageCursor | None) -> None:
    """Put the next page's cursor in `X-Next-Cursor` and a `Link` header (none on the last).

    The link is built from PUBLIC_URL when it is set, else it is a relative reference (the
    path and query): never from the request's `Host`, which the caller chooses.
    """
    if next_cursor is None:
        return
    token = next_cursor.encode()
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("cursor", "skip")]
    params.append(("cursor", token))
    public_url = core_state(request.app).settings.public_url
    target = f"{request.url.path}?{urlencode(params)}"
    if public_url is not None:
        target = public_url.rstrip("/") + target
    response.headers["X-Next-Cursor"] = token
    response.headers["Link"] = f'<{target}>; rel="next"'
