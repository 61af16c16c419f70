"""The JSON fields of an action on their way in: depth limit, secret redaction, storable text.

Errors are collected per field (with the item's index in a batch) and raised together, in the
shape FastAPI uses for request validation errors.
"""

import json
import re
from typing import Any

import orjson

from app.core.errors import Unprocessable
from app.core.redact import JsonTooDeep, Redactor
from app.core.storable import LONE_SURROGATE, NUL_CHARACTER

Loc = tuple[str | int, ...]
# `\u0000` in serialised JSON, unless its backslash is itself escaped (the text `\\u0000`)
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def invalid(loc: Loc, message: str, kind: str = "value_error") -> Unprocessable:
    """A 422 naming one request field, e.g. `invalid(("query", "since"), "...")`."""
    return Unprocessable([{"type": kind, "loc": list(loc), "msg": message}])


class PayloadCleaner:
    def __init__(self, redactor: Redactor, max_depth: int) -> None:
        self.redactor = redactor
        self.max_depth = max_depth
        self.errors: list[dict[str, Any]] = []

    def clean(self, value: Any, loc: Loc) -> Any:
        """`value` with its secrets redacted, or the value as is when it is too deep (noted).

        One walk of the value does both: this runs for every JSON field of every action.
        """
        try:
            cleaned = self.redactor.redact(value, self.max_depth)
        except JsonTooDeep:
            self._note("json_too_deep", loc, f"JSON nested deeper than {self.max_depth} levels")
            return value
        if (problem := unstorable(cleaned)) is not None:
            self._note("value_error", loc, problem)
        return cleaned

    def _note(self, kind: str, loc: Loc, message: str) -> None:
        self.errors.append({"type": kind, "loc": ["body", *loc], "msg": message})

    def raise_errors(self) -> None:
        if self.errors:
            raise Unprocessable(self.errors)


def unstorable(value: Any) -> str | None:
    """Why a JSON column could not store `value` (NUL, lone surrogates), or None.

    Serialising is the quickest full walk of a payload's strings; orjson refuses surrogates and
    writes NUL as an escape. (It also refuses integers beyond 64 bits, which are fine.)
    """
    try:
        text = orjson.dumps(value)
    except TypeError:
        try:
            text = json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            return LONE_SURROGATE
    if b"\\u0000" in text and _NUL_ESCAPE.search(text):
        return NUL_CHARACTER
    return None
