"""Keyset pagination: opaque cursors over (created_at, id), and the next-page headers.

A cursor names the last row of a page; the next page starts strictly after it, so page
10,000 costs what page 1 costs. Lists return plain JSON arrays, and the next page travels
in `X-Next-Cursor` and `Link: <...>; rel="next"` (absent on the last page).
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlencode
from uuid import UUID

from fastapi import Request, Response
from sqlalchemy import ColumnElement, literal, tuple_

from app.core.errors import BadRequest

Order = Literal["desc", "asc"]


class PageCursor(Protocol):
    """Anything that names the last row of a page as an opaque token."""

    def encode(self) -> str: ...


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: UUID

    def encode(self) -> str:
        raw = json.dumps({"t": self.created_at.isoformat(), "i": str(self.id)}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            created_at = datetime.fromisoformat(data["t"])
            if created_at.tzinfo is None:
                raise ValueError("naive timestamp")
            return cls(created_at=created_at, id=UUID(data["i"]))
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
            raise BadRequest(
                "cursor is malformed; pass the X-Next-Cursor of a previous page"
            ) from None

    @classmethod
    def of(cls, row: Any) -> "Cursor":
        return cls(created_at=row.created_at, id=row.id)


def after_cursor(
    created_at: Any, id_: Any, cursor: Cursor, order: Order = "desc"
) -> ColumnElement[bool]:
    """Rows strictly after `cursor` in (created_at, id) order (newest first for desc).

    A row-value comparison, so PostgreSQL and SQLite walk the (tenant, created_at, id) index.
    """
    row = tuple_(created_at, id_)
    bound = tuple_(literal(cursor.created_at, created_at.type), literal(cursor.id, id_.type))
    return row < bound if order == "desc" else row > bound


def set_next_page(request: Request, response: Response, next_cursor: PageCursor | None) -> None:
    """Put the next page's cursor in `X-Next-Cursor` and a `Link` header (none on the last)."""
    if next_cursor is None:
        return
    token = next_cursor.encode()
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("cursor", "skip")]
    params.append(("cursor", token))
    response.headers["X-Next-Cursor"] = token
    response.headers["Link"] = f'<{request.url.replace(query=urlencode(params))}>; rel="next"'
