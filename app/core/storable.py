"""Text the database can store: PostgreSQL refuses NUL characters, and a lone surrogate is not
Unicode at all (it cannot be encoded to be sent). Both are refused as input, never met at insert.
"""

NUL_CHARACTER = "text must not contain NUL characters"
LONE_SURROGATE = "text must be valid Unicode (no lone surrogates)"


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
