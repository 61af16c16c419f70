"""The filters of action listings, export and statistics: as plain data, as query parameters,
and as SQL — each written once.

`ActionFilter` is what a request asks for. `action_filter` reads it from the query string (the
same parameters on every route that takes filters). `RULES` maps each filter field to the
column it tests and how; `conditions` turns a filter into a WHERE clause over any table that
has those columns — the action rows, or the rollups that stand for them (whose time column is
the period's `start`) — and `covers` says whether a table can answer a filter at all. Adding a
filter is one field, one parameter and one rule.

Time ranges are half-open: `since` is included, `until` is not.
"""

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Query
from sqlalchemy import ColumnElement, Table, func, or_

from app.actions.schemas import fits
from app.actions.statuses import StatusIn
from app.core.errors import invalid
from app.core.inputs import MAX_INT32, QueryTime, Text


@dataclass(frozen=True)
class ActionFilter:
    action_types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    service: str | None = None
    source: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    correlation_id: str | None = None
    parent_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_duration_ms: int | None = None
    max_duration_ms: int | None = None
    q: str | None = None
    schema_errors: bool | None = None

    def given(self) -> list[tuple[str, Any]]:
        """The fields that narrow the selection, with their values."""
        values = ((f.name, getattr(self, f.name)) for f in fields(self))
        return [(name, value) for name, value in values if value not in (None, ())]


def _text_match(columns: list[Any], needle: str) -> ColumnElement[bool]:
    # lower() on both sides and escaped wildcards: the same match on PostgreSQL and SQLite
    # (SQLite's lower() folds ASCII letters only, so other letters match case-sensitively).
    lowered = needle.lower()
    return or_(*(func.lower(c).contains(lowered, autoescape=True) for c in columns))


TIME = "<time>"  # stands for the table's time column: created_at, or a rollup's start


@dataclass(frozen=True)
class Rule:
    columns: tuple[str, ...]
    test: Callable[[list[Any], Any], ColumnElement[bool]]


def _one(test: Callable[[Any, Any], ColumnElement[bool]]) -> Callable[[list[Any], Any], Any]:
    return lambda columns, value: test(columns[0], value)


RULES: dict[str, Rule] = {
    "action_types": Rule(("action_type",), _one(lambda c, v: c.in_(v))),
    "statuses": Rule(("status",), _one(lambda c, v: c.in_(v))),
    "providers": Rule(("provider_name",), _one(lambda c, v: c.in_(v))),
    "service": Rule(("service",), _one(lambda c, v: c == v)),
    "source": Rule(("source",), _one(lambda c, v: c == v)),
    "user_id": Rule(("user_id",), _one(lambda c, v: c == v)),
    "session_id": Rule(("session_id",), _one(lambda c, v: c == v)),
    "correlation_id": Rule(("correlation_id",), _one(lambda c, v: c == v)),
    "parent_id": Rule(("parent_id",), _one(lambda c, v: c == v)),
    "since": Rule((TIME,), _one(lambda c, v: c >= v)),
    "until": Rule((TIME,), _one(lambda c, v: c < v)),
    "min_duration_ms": Rule(("execution_time_ms",), _one(lambda c, v: c >= v)),
    "max_duration_ms": Rule(("execution_time_ms",), _one(lambda c, v: c <= v)),
    "q": Rule(("action_name", "error_message"), _text_match),
    "schema_errors": Rule(
        ("schema_errors",), _one(lambda c, v: c.is_not(None) if v else c.is_(None))
    ),
}
assert RULES.keys() == {f.name for f in fields(ActionFilter)}, "every filter field has a rule"


def _column(table: Table, name: str, time_column: str) -> Any:
    return table.c[time_column if name == TIME else name]


def covers(table: Table, f: ActionFilter, time_column: str = "created_at") -> bool:
    """Whether `table` has every column that `f` tests."""
    return all(
        (time_column if name == TIME else name) in table.c
        for field, _ in f.given()
        for name in RULES[field].columns
    )


def conditions(
    table: Table, tenant_id: UUID, f: ActionFilter, time_column: str = "created_at"
) -> list[ColumnElement[bool]]:
    """The WHERE clause of `f` over one tenant's rows of `table` (its tenant first)."""
    where: list[ColumnElement[bool]] = [table.c.tenant_id == tenant_id]
    for field, value in f.given():
        rule = RULES[field]
        where.append(rule.test([_column(table, c, time_column) for c in rule.columns], value))
    return where


_REPEAT = "Repeat the parameter to match any of several values"


async def action_filter(
    action_type: Annotated[
        list[Annotated[Text, fits("action_type")]] | None,
        Query(description=f"Action type, e.g. crm_create. {_REPEAT}"),
    ] = None,
    status: Annotated[
        list[StatusIn] | None,
        Query(description=f"Status (aliases initiated, completed, failed accepted). {_REPEAT}"),
    ] = None,
    provider_name: Annotated[
        list[Annotated[Text, fits("provider_name")]] | None,
        Query(description=f"External system, e.g. hubspot. {_REPEAT}"),
    ] = None,
    service: Annotated[
        Annotated[Text, fits("service")] | None, Query(description="Internal component, exact")
    ] = None,
    source: Annotated[
        Annotated[Text, fits("source")] | None,
        Query(description="Origin (ui_button, api …), exact"),
    ] = None,
    user_id: Annotated[
        Annotated[Text, fits("user_id")] | None, Query(description="User, exact")
    ] = None,
    session_id: Annotated[
        Annotated[Text, fits("session_id")] | None, Query(description="Session, exact")
    ] = None,
    correlation_id: Annotated[
        Annotated[Text, fits("correlation_id")] | None, Query(description="Correlation id, exact")
    ] = None,
    parent_id: Annotated[UUID | None, Query(description="Actions inside this one (its id)")] = None,
    since: Annotated[
        QueryTime | None,
        Query(
            description="Created at or after: ISO 8601 (UTC if no zone), a date, Unix seconds, "
            "or relative to now (-15m, -24h, -7d, now, today, yesterday)",
            examples=["-24h"],
        ),
    ] = None,
    until: Annotated[
        QueryTime | None,
        Query(description="Created before (exclusive); the same forms as since"),
    ] = None,
    min_duration_ms: Annotated[
        int | None,
        Query(ge=0, le=MAX_INT32, description="execution_time_ms at least this (inclusive)"),
    ] = None,
    max_duration_ms: Annotated[
        int | None,
        Query(ge=0, le=MAX_INT32, description="execution_time_ms at most this (inclusive)"),
    ] = None,
    q: Annotated[
        Text | None,
        Query(min_length=1, max_length=255, description="Text in action_name or error_message"),
    ] = None,
    schema_errors: Annotated[
        bool | None,
        Query(description="true: only actions that broke their type's `warn` schema"),
    ] = None,
) -> ActionFilter:
    """The list filters of a request (every route that filters actions takes these)."""
    if since is not None and until is not None and since > until:
        raise invalid(("query", "since"), "since must not be after until")
    low, high = min_duration_ms, max_duration_ms
    if low is not None and high is not None and low > high:
        message = "min_duration_ms must not exceed max_duration_ms"
        raise invalid(("query", "min_duration_ms"), message)
    return ActionFilter(
        action_types=tuple(action_type or ()),
        statuses=tuple(status or ()),
        providers=tuple(provider_name or ()),
        service=service,
        source=source,
        user_id=user_id,
        session_id=session_id,
        correlation_id=correlation_id,
        parent_id=parent_id,
        since=since,
        until=until,
        min_duration_ms=min_duration_ms,
        max_duration_ms=max_duration_ms,
        q=q,
        schema_errors=schema_errors,
    )


Filters = Annotated[ActionFilter, Depends(action_filter)]
