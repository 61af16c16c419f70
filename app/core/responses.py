"""A JSON response rendered by orjson straight from plain rows.

List routes return rows read from the database as they are: every value already has its
column's type (UUID, timezone-aware datetime, str, int), so building and validating a model
per row would only repeat work. orjson writes UTC times with `Z`, as pydantic does; driver
value types it does not know (asyncpg's UUID) are written as their text. orjson refuses
integers beyond 64 bits, which JSON payloads may hold: such a body is written by the standard
library instead.
"""

import json
from datetime import datetime
from typing import Any

import orjson
from fastapi.responses import JSONResponse


class RowsResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, default=str, option=orjson.OPT_UTC_Z)
        except TypeError:
            return json.dumps(content, default=_text, separators=(",", ":")).encode()


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)
