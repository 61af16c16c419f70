"""Text and JSON the database can store: PostgreSQL refuses NUL characters, and a lone surrogate
is not Unicode at all (it cannot be encoded to be sent). Both are refused as input, never met at
insert.

JSON numbers: NaN and infinities (`NaN`, `Infinity`, `1e400`, which Python's JSON reader
accepts) are not JSON at all — PostgreSQL's JSONB and every strict reader refuse them — so they
are refused with a 422. Integers of any size are JSON, and JSONB keeps them exactly: they are
stored losslessly, and every way out (responses, idempotent replays, both export formats)
writes them back exactly (`app.core.db.json_text`: the standard library where orjson, limited
to 64 bits, cannot).
"""

NUL_CHARACTER = "text must not contain NUL characters"
LONE_SURROGATE = "text must be valid Unicode (no lone surrogates)"
NOT_FINITE = "numbers must be finite (no NaN, Infinity or values beyond double range)"


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored, or None."""
    if "\x00" in value:
        return NUL_CHARACTER
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            return LONE_SURROGATE
    return None
