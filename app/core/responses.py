"""A JSON response rendered by orjson straight from plain rows.

List routes return rows read from the database as they are: every value already has its
column's type (UUID, timezone-aware datetime, str, int), so building and validating a model
per row would only repeat work. orjson writes UTC times with `Z`, as pydantic does; driver
value types it does not know (asyncpg's UUID) are written as their text.
"""

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class RowsResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str, option=orjson.OPT_UTC_Z)
