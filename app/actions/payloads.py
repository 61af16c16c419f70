"""The JSON fields of an action on their way in: depth limit, secret redaction, storable text.

Errors are collected per field (with the item's index in a batch) and raised together, in the
shape FastAPI uses for request validation errors.
"""

import json
import math
import re
from typing import Any

import orjson

from app.core.errors import Unprocessable
from app.core.redact import JsonTooDeep, Redactor
from app.core.storable import LONE_SURROGATE, NOT_FINITE, NUL_CHARACTER

Loc = tuple[str | int, ...]
# `\u0000` in serialised JSON, unless its backslash is itself escaped (the text `\\u0000`)
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


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
    """Why a JSON column could not store `value` exactly, or None: NUL, lone surrogates, NaN or
    infinities. (Integers beyond 64 bits are stored exactly: see app/core/storable.py.)

    Serialising is the quickest full walk of a payload's strings; orjson refuses surrogates (and
    integers beyond 64 bits), writes NUL as an escape and NaN or infinities as `null`, so only a
    payload whose text holds a `null` is walked again for them.
    """
    try:
        text = orjson.dumps(value)
    except TypeError:
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            return LONE_SURROGATE
        text = json.dumps(value).encode()
    if b"\\u0000" in text and _NUL_ESCAPE.search(text):
        return NUL_CHARACTER
    if b"null" in text and _has_non_finite(value):
        return NOT_FINITE
    return None


def _has_non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
