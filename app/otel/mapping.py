"""How a span or a log record becomes an action: the field-by-field mapping.

A span is one action (docs/opentelemetry.md has the table):
- id from (trace id, span id) (`values.span_action_id`); `correlation_id` the trace id in 32
  lowercase hex digits; `parent_id` the action of the parent span, when there is one;
- `action_name` the span name; `action_type` the attribute `actionlog.action_type`, else
  `gen_ai.operation.name`, else the span name;
- `provider_name` from `gen_ai.provider.name` (or the older `gen_ai.system`), else
  `peer.service`, `server.address`, `db.system`, `rpc.system`; `service` the resource's
  `service.name`; `user_id` from `enduser.id` or `user.id`; `session_id` from `session.id` or
  `gen_ai.conversation.id`;
- `status` failure for span status ERROR, else success; `error_message` the status message or
  the `exception` event's `exception.message`; `error_type` its `exception.type`, else the
  attribute `error.type`;
- `started_at`, `completed_at` (and so `execution_time_ms`) from the span's times; its events
  are the steps (name, time, attributes; an `exception` event's status is `error`);
- `request_payload` / `response_data` hold `gen_ai.input.messages` / `gen_ai.output.messages`
  (as `{"messages": …}`) when present; every other span attribute is in `metadata`, with the
  resource's attributes, the instrumentation scope, the span kind and ids under `otel.*` keys.

A log record is one action too: `action_type` its event name (the record's `event_name`, else
its `event.name` attribute, else `log`), `action_name` its body (cut to the column), `status`
from its severity (ERROR and above failure, WARN warning, else success), `correlation_id` and
`parent_id` from its trace and span ids, `service` from `service.name`, its time as
`completed_at`, and its attributes in `metadata`.

The result is the body of an action as `POST /api/v1/logs/actions` takes it, validated by the
same schema; text too long for its column is cut here rather than refused.
"""

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from app.actions.models import action_logs
from app.actions.schemas import MAX_STEPS
from app.otel.values import attributes, first_text, plain, record_action_id, span_action_id

SOURCE = "opentelemetry"
# Span attributes stored in fields of their own rather than in the metadata.
_MOVED = ("actionlog.action_type", "gen_ai.input.messages", "gen_ai.output.messages")
_PROVIDERS = ("gen_ai.provider.name", "gen_ai.system", "peer.service", "server.address",
              "db.system", "rpc.system")  # fmt: skip
_KINDS = {kind: name.removeprefix("SPAN_KIND_").lower() for name, kind in Span.SpanKind.items()}
SEVERITY_WARN, SEVERITY_ERROR = 13, 17  # the first WARN and ERROR severity numbers


class Resource:
    """What every span or record of one resource and scope shares."""

    def __init__(self, resource_attributes: dict[str, Any], scope: dict[str, Any]) -> None:
        self.service = first_text(resource_attributes, "service.name")
        self.metadata = {"otel.resource": resource_attributes, "otel.scope": scope}


_LENGTHS: dict[str, int] = {
    column.name: length
    for column in action_logs.columns
    if (length := getattr(column.type, "length", None))
}


def _cut(value: str | None, column: str) -> str | None:
    return value[: _LENGTHS[column]] if value is not None else value


def _time(nanos: int) -> datetime | None:
    return datetime.fromtimestamp(nanos / 1e9, UTC) if nanos else None


def _hex(value: bytes) -> str | None:
    return value.hex() if value else None


def _messages(value: Any) -> dict[str, Any] | None:
    """GenAI messages as stored: instrumentations send them as JSON text or as values."""
    if value is None:
        return None
    if isinstance(value, str):
        with contextlib.suppress(orjson.JSONDecodeError):  # not JSON: kept as the text it is
            value = orjson.loads(value)
    return {"messages": value}


def _step(event: Span.Event) -> dict[str, Any]:
    return {
        "step": event.name[:255] or "event",
        "status": "error" if event.name == "exception" else "ok",
        "details": attributes(event.attributes),
        "timestamp": _time(event.time_unix_nano),
    }


def span_action(span: Span, resource: Resource) -> dict[str, Any]:
    """The action of one span (see the module's docstring)."""
    found = attributes(span.attributes)
    exception = next((e for e in span.events if e.name == "exception"), None)
    raised = attributes(exception.attributes) if exception is not None else {}
    failed = span.status.code == Status.STATUS_CODE_ERROR
    error_message = span.status.message or first_text(raised, "exception.message")
    metadata = {key: value for key, value in found.items() if key not in _MOVED}
    metadata.update(resource.metadata)
    metadata["otel.span_id"] = span.span_id.hex()
    metadata["otel.kind"] = _KINDS.get(span.kind, "unspecified")
    if span.parent_span_id:
        metadata["otel.parent_span_id"] = span.parent_span_id.hex()
    if span.trace_state:
        metadata["otel.trace_state"] = span.trace_state
    if span.links:
        metadata["otel.links"] = [
            {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(),
             "attributes": attributes(link.attributes)}
            for link in span.links
        ]  # fmt: skip
    action_type = first_text(found, "actionlog.action_type", "gen_ai.operation.name")
    return {
        "id": span_action_id(span.trace_id, span.span_id),
        "action_type": _cut(action_type or span.name, "action_type"),
        "action_name": _cut(span.name, "action_name"),
        "provider_name": _cut(first_text(found, *_PROVIDERS), "provider_name"),
        "service": _cut(resource.service, "service"),
        "source": SOURCE,
        "user_id": _cut(first_text(found, "enduser.id", "user.id"), "user_id"),
        "session_id": _cut(first_text(found, "session.id", "gen_ai.conversation.id"), "session_id"),
        "correlation_id": span.trace_id.hex(),
        "parent_id": span_action_id(span.trace_id, span.parent_span_id)
        if span.parent_span_id
        else None,
        "status": "failure" if failed else "success",
        "error_message": (error_message or None) if failed or exception else None,
        "error_type": _cut(
            first_text(raised, "exception.type") or first_text(found, "error.type"), "error_type"
        ),
        "started_at": _time(span.start_time_unix_nano),
        "completed_at": _time(span.end_time_unix_nano),
        "steps": [_step(event) for event in span.events[:MAX_STEPS]],
        "request_payload": _messages(found.get("gen_ai.input.messages")) or {},
        "response_data": _messages(found.get("gen_ai.output.messages")),
        "metadata": metadata,
    }


def _status(record: LogRecord) -> str:
    severity = int(record.severity_number)
    if not severity and record.severity_text:
        word = record.severity_text.strip().upper()
        severity = SEVERITY_ERROR if word.startswith(("ERR", "FATAL", "CRIT")) else 0
        severity = SEVERITY_WARN if word.startswith("WARN") else severity
    if severity >= SEVERITY_ERROR:
        return "failure"
    return "warning" if severity >= SEVERITY_WARN else "success"


def _body_text(body: Any) -> str | None:
    if body is None or isinstance(body, str):
        return body or None
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def record_action(record: LogRecord, resource: Resource) -> dict[str, Any]:
    """The action of one log record (see the module's docstring)."""
    found = attributes(record.attributes)
    body = plain(record.body)
    event_name = getattr(record, "event_name", "") or first_text(found, "event.name")
    status = _status(record)
    metadata = dict(found)
    metadata.update(resource.metadata)
    if record.severity_text:
        metadata["otel.severity_text"] = record.severity_text
    metadata["otel.severity_number"] = record.severity_number
    if body is not None and not isinstance(body, str):
        metadata["otel.body"] = body
    if record.span_id:
        metadata["otel.span_id"] = record.span_id.hex()
    fingerprint = record.SerializeToString(deterministic=True)
    linked = len(record.trace_id) == 16 and len(record.span_id) == 8
    failed = status == "failure"
    return {
        "id": record_action_id(fingerprint + (resource.service or "").encode()),
        "action_type": _cut(event_name or "log", "action_type"),
        "action_name": _cut(_body_text(body), "action_name"),
        "service": _cut(resource.service, "service"),
        "source": SOURCE,
        "user_id": _cut(first_text(found, "enduser.id", "user.id"), "user_id"),
        "session_id": _cut(first_text(found, "session.id", "gen_ai.conversation.id"), "session_id"),
        "correlation_id": _hex(record.trace_id),
        "parent_id": span_action_id(record.trace_id, record.span_id) if linked else None,
        "status": status,
        "error_message": first_text(found, "exception.message")
        or (_body_text(body) if failed else None),
        "error_type": _cut(first_text(found, "exception.type", "error.type"), "error_type"),
        "completed_at": _time(record.time_unix_nano or record.observed_time_unix_nano),
        "metadata": metadata,
    }
