"""The input types every route shares, each rule written once: storable text, timestamps in
the accepted range, bounded integers.

Every value a request carries is checked here, at the edge, so that nothing the database or
the arithmetic behind a query cannot take (a NUL on PostgreSQL, the year 1 minus 14 hours, an
offset beyond 64 bits) is met later as an exception: it is a 422 naming the field.

Timestamps: `MIN_TIME <= t < MAX_TIME` (UTC), years 1900 to 8999. Every timestamp a request
gives — query filters, bodies, cursors, a key's expiry — must lie in it. The margin to Python's
own limits (years 1 and 9999) leaves room for what queries compute from a given time (a time
series' buckets, the default 30 days before `until`), so none of that can overflow.

Time filters (`QueryTime`, every time query parameter and the console's time fields) take what
people type: ISO 8601 date-times and dates, Unix seconds, and times relative to now (`-15m`,
`-24h`, `-7d`, `now`, `today`, `yesterday`). Bodies stay strict ISO 8601 (`UtcDatetime`): a
program writes them, and a number there is more likely a mistake than a Unix time.
"""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, GetJsonSchemaHandler, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from app.core.storable import text_problem

MIN_TIME = datetime(1900, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9000, 1, 1, tzinfo=UTC)
TIME_RANGE = "timestamps must lie between 1900-01-01T00:00:00Z and 9000-01-01T00:00:00Z"
MAX_INT32 = 2**31 - 1
MAX_OFFSET = 10_000_000  # beyond it an offset is a scan anyway: page with the cursor instead


def in_time_range(value: datetime) -> datetime:
    """`value` in UTC (UTC assumed when it has no zone), or ValueError when outside the range.

    The year is checked before any conversion: converting `0001-01-01T00:00:00+14:00` to UTC
    is itself an overflow.
    """
    if not MIN_TIME.year - 1 <= value.year <= MAX_TIME.year:
        raise ValueError(TIME_RANGE)
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not MIN_TIME <= value < MAX_TIME:
        raise ValueError(TIME_RANGE)
    return value


_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


def iso_8601_only(value: Any) -> Any:
    """Refuse numbers where a timestamp is expected: pydantic would read `0.5` as seconds since
    1970, which is not what a caller who sent it meant (and not what the schema says)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise PydanticCustomError("datetime_type", "must be an ISO 8601 timestamp, not a number")
    if isinstance(value, str | bytes) and _NUMBER.match(
        value if isinstance(value, str) else value.decode("latin-1")
    ):
        raise PydanticCustomError("datetime_type", "must be an ISO 8601 timestamp, not a number")
    return value


TIME_FORMS = (
    "accepted forms: an ISO 8601 date-time (2026-12-01T09:30:00Z), a date (2026-12-01), "
    "Unix seconds (1764581400), or a time relative to now (-15m, -24h, -7d, now, today, yesterday)"
)
TIME_HELP = "ISO 8601, a date, Unix seconds, or relative (-15m, -24h, -7d, now)"
_RELATIVE = re.compile(r"^(?:now)?\s*-\s*(\d{1,9})\s*(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_TIME_TEXT = 64  # the longest ISO 8601 form is 32 characters
_UNIX = re.compile(r"^\d{1,12}(\.\d{1,6})?$")


def _time_problem(value: str) -> PydanticCustomError:
    shown = value if len(value) <= 40 else value[:40] + "…"
    return PydanticCustomError(
        "time_format", "unrecognised time {value!r}; {forms}", {"value": shown, "forms": TIME_FORMS}
    )


def parse_time(value: Any, now: datetime | None = None) -> Any:
    """A time filter as people type it, as a datetime (UTC when it names no zone).

    Relative forms count back from `now`; `today` and `yesterday` are the start of that UTC day.
    Anything else that is not a datetime already is refused with the accepted forms.
    """
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) > MAX_TIME_TEXT:
        raise _time_problem(str(value))
    text = value.strip().lower()
    now = now or datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if text == "now":
        return now
    if text in ("today", "yesterday"):
        return midnight - timedelta(days=1 if text == "yesterday" else 0)
    if match := _RELATIVE.match(text):
        try:
            return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
        except OverflowError:
            raise PydanticCustomError("time_range", TIME_RANGE) from None
    if _UNIX.match(text):
        seconds = float(text)
        if seconds >= (MAX_TIME - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds():
            raise PydanticCustomError("time_range", TIME_RANGE)
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    try:
        return datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise _time_problem(value) from None


def storable_text(value: str) -> str:
    """Text the database can store: no NUL character, no lone surrogate (the 422's `msg` is
    the problem itself, as the service's own checks of JSON fields word it)."""
    if (problem := text_problem(value)) is not None:
        raise PydanticCustomError("value_error", problem)
    return value


class _NoNul:
    """Says in a text's JSON schema that it holds no NUL character (PostgreSQL stores none)."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.setdefault("pattern", r"^[^\x00]*$")
        return schema


Text = Annotated[str, AfterValidator(storable_text), _NoNul()]
# The schema states the range by the year (1901 to 8998: the margin keeps any UTC offset inside)
IN_RANGE_YEAR = r"^(190[1-9]|19[1-9][0-9]|[2-7][0-9]{3}|8[0-8][0-9]{2}|89[0-8][0-9])-"


class _YearInRange:
    """Puts the accepted years in a timestamp's JSON schema, so that clients generated from
    the OpenAPI document (and its test tools) know the range too."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = IN_RANGE_YEAR
        return schema


UtcDatetime = Annotated[
    datetime, BeforeValidator(iso_8601_only), AfterValidator(in_time_range), _YearInRange()
]
RELATIVE_OR_UNIX = r"^([0-9]{1,10}|-[1-9][0-9]{0,3}[smhd]|now|today|yesterday)$"
# Documented as text in its forms: more than `format: date-time` says (a client or a schema
# checker that held to that format would refuse `-24h` or Unix seconds), each form stated so
# that a value the schema allows is a value the service takes.
QueryTime = Annotated[
    datetime,
    BeforeValidator(parse_time),
    AfterValidator(in_time_range),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time", "pattern": IN_RANGE_YEAR},
                {"type": "string", "format": "date", "pattern": IN_RANGE_YEAR},
                {"type": "string", "pattern": RELATIVE_OR_UNIX},
            ],
            "description": f"A time: {TIME_HELP}",
            "examples": ["-24h", "2026-12-01T09:30:00Z", "2026-12-01", "1764581400", "now"],
        }
    ),
]
Offset = Annotated[
    int, Field(ge=0, le=MAX_OFFSET, description="Rows to skip (prefer `cursor`); at most 10^7")
]
WHOLE_NUMBER = "must be a whole number"


def whole_number(value: Any) -> Any:
    """An integral JSON number as the integer it is: JSON (and the OpenAPI schema) count
    `3291.0` as an integer, so it is one; `3291.5` is refused as not a whole number."""
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise PydanticCustomError("int_from_float", WHOLE_NUMBER)
    return value


# strict after `whole_number`: a JSON `false` or `"12"` is not a count of milliseconds (lax
# mode would take them), an integral number is
Int32 = Annotated[int, Field(ge=0, le=MAX_INT32, strict=True), BeforeValidator(whole_number)]
