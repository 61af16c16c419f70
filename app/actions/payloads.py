"""The JSON fields of an action on their way in: depth limit and secret redaction.

Errors are collected per field (with the item's index in a batch) and raised together, in the
shape FastAPI uses for request validation errors.
"""

from typing import Any

from app.core.errors import Unprocessable
from app.core.redact import JsonTooDeep, Redactor

Loc = tuple[str | int, ...]


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
            return self.redactor.redact(value, self.max_depth)
        except JsonTooDeep:
            self.errors.append(
                {
                    "type": "json_too_deep",
                    "loc": ["body", *loc],
                    "msg": f"JSON nested deeper than {self.max_depth} levels",
                }
            )
            return value

    def raise_errors(self) -> None:
        if self.errors:
            raise Unprocessable(self.errors)
