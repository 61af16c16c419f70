"""Statuses of an action: the canonical names, older spellings accepted as aliases, and which
ones end an action."""

from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, WithJsonSchema

Status = Literal[
    "pending", "in_progress", "success", "failure", "timeout", "retry", "warning", "cancelled"
]
STATUSES: tuple[str, ...] = get_args(Status)
ALIASES = {"initiated": "pending", "completed": "success", "failed": "failure"}

FINAL = frozenset({"success", "failure", "timeout", "cancelled", "warning"})
FAILED = ("failure", "timeout")
SUCCESSFUL = "success"


def canonical_status(value: Any) -> Any:
    """The canonical spelling of a status (case-insensitive, aliases accepted)."""
    if not isinstance(value, str):
        return value
    name = value.strip().lower()
    name = ALIASES.get(name, name)
    if name not in STATUSES:
        known = ", ".join(STATUSES)
        raise ValueError(
            f"unknown status '{value}'; use one of {known} (or initiated, completed, failed)"
        )
    return name


# The schema lists the aliases as accepted input too (generated clients and /docs offer them).
StatusIn = Annotated[
    Status,
    BeforeValidator(canonical_status),
    WithJsonSchema({"type": "string", "enum": [*STATUSES, *ALIASES]}),
]
