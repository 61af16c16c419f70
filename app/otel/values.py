"""OTLP attribute values as plain JSON values, and the ids that tie spans to actions.

Attributes arrive as `AnyValue`s (string, bool, int, double, bytes, array, key-value list);
stored in an action's metadata they become the JSON values they stand for (bytes as hex).

An action's id is derived from its span's (trace id, span id) — a UUID version 5 over both —
so that an exporter that sends a batch again records each span once (a replay, not a
duplicate), and a child names its parent's action without having seen it: a child that arrives
before its parent still links, by construction. A log record's id is derived from the whole
record, so a record sent again is a replay too.
"""

import math
import uuid
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

# The namespace of the ids of recorded spans and log records (fixed: ids must never change).
NAMESPACE = uuid.UUID("0b6f2a3e-5c1d-4e8f-9a7b-3c2d1e0f4a5b")


@lru_cache(maxsize=8192)  # a parent's id is asked for by each of its children
def span_action_id(trace_id: bytes, span_id: bytes) -> uuid.UUID:
    """The action id of the span `span_id` of trace `trace_id`."""
    return uuid.uuid5(NAMESPACE, f"span:{trace_id.hex()}:{span_id.hex()}")


def record_action_id(fingerprint: bytes) -> uuid.UUID:
    """The action id of a log record, from its serialised form (`fingerprint`)."""
    return uuid.uuid5(NAMESPACE, "log:" + fingerprint.hex())


def plain(value: AnyValue) -> Any:
    """An attribute value as JSON: lists and objects nested, bytes as hex, unset as null,
    a non-finite double as text."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind == "int_value":
        return int(value.int_value)
    if kind == "double_value" and not math.isfinite(value.double_value):
        return str(value.double_value)  # JSON has no NaN or infinity: kept as text
    return getattr(value, kind)


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    """Key-value pairs as one object (of a repeated key, the last counts)."""
    return {pair.key: plain(pair.value) for pair in pairs}


def text(value: Any) -> str | None:
    """An attribute as text: strings as they are, numbers and booleans written out, else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return None


def first_text(found: dict[str, Any], *names: str) -> str | None:
    """The first of these attributes that is present, as text."""
    for name in names:
        if (value := text(found.get(name))) is not None:
            return value
    return None
