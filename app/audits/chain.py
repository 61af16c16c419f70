"""The tamper-evident chain of a tenant's audit rows: canonical JSON and row hashes.

Each row's `hash` is SHA-256 of the previous row's hash followed by the canonical JSON of the
row's content; the first row follows 64 zeros. Canonical JSON has sorted keys, no whitespace,
ASCII-only strings, ids as strings and timestamps as UTC ISO 8601 with microseconds. An
optional field (`correlation_id`) is part of the hashed content only when it is set.

Numbers are written as an exact decimal mantissa and exponent (`15e-1` for 1.5, `1e2` for
100 and 100.0): PostgreSQL's JSONB keeps a number's value but not its spelling (`1e+20`
comes back as `100000000000000000000`), so hashing the value, not the spelling, lets the
chain be recomputed from stored rows on every engine.
"""

import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any
from uuid import UUID

GENESIS_HASH = "0" * 64

# The fields of a row that its hash covers, in addition to the previous row's hash.
HASHED_FIELDS = (
    "id",
    "tenant_id",
    "sequence",
    "action",
    "resource_type",
    "resource_id",
    "user_id",
    "changes",
    "ip_address",
    "user_agent",
    "metadata",
    "created_at",
)
# Hashed only when set. Rows without them, including every row written before audit events had
# a correlation id or sealed personal fields (app/subjects/sealing.py),
# hash exactly as they always did, so existing chains still verify; a row
# that has one cannot lose or change it unnoticed.
OPTIONAL_HASHED_FIELDS = ("correlation_id", "sealed")


def _number(value: int | float) -> str:
    if isinstance(value, int):  # exact already: only the trailing zeros move to the exponent
        digits = str(abs(value))
        mantissa = digits.rstrip("0")
        if not mantissa:
            return "0"
        exponent = len(digits) - len(mantissa)
        return ("-" if value < 0 else "") + mantissa + (f"e{exponent}" if exponent else "")
    if not math.isfinite(value):
        raise ValueError("JSON numbers must be finite")
    exact = Decimal(repr(value))
    if exact == 0:
        return "0"
    sign, digits_, exponent_ = exact.as_tuple()
    assert isinstance(exponent_, int)
    mantissa = "".join(map(str, digits_)).rstrip("0")
    exponent_ += len(digits_) - len(mantissa)
    return ("-" if sign else "") + mantissa + (f"e{exponent_}" if exponent_ else "")


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# What `json.dumps` writes for a string (ASCII only), without its per-call dispatch: every row
# hashes dozens of strings, and a chain must hash exactly as it always did.
_string = encode_basestring_ascii


def canonical_json(value: Any) -> str:
    """The one JSON spelling of `value` that the chain hashes."""
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict | Mapping):
        items = sorted((str(k), v) for k, v in value.items())
        # strings, the commonest values, spelled in place rather than by a call each
        return (
            "{"
            + ",".join(
                _string(k) + ":" + (_string(v) if type(v) is str else canonical_json(v))
                for k, v in items
            )
            + "}"
        )
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, list | tuple):
        return (
            "[" + ",".join(_string(v) if type(v) is str else canonical_json(v) for v in value) + "]"
        )
    if isinstance(value, UUID):
        return _string(str(value))
    if isinstance(value, datetime):
        return _string(_timestamp(value))
    raise TypeError(f"{type(value).__name__} is not JSON")


def row_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    """The hash of a row whose hashed fields are `content`, following `prev_hash`."""
    fields = {name: content[name] for name in HASHED_FIELDS}
    for name in OPTIONAL_HASHED_FIELDS:
        if content.get(name) is not None:
            fields[name] = content[name]
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode()).hexdigest()
