"""Recording an OTLP export: every valid span or log record becomes an action, the rest are
counted and named in the answer's `partial_success`.

Items are checked one by one (ids of the right length, a body the action schema accepts), so
that one bad span costs only itself. The good ones are recorded through the action `Recorder`
(app/actions/recorder.py), the same path as `POST /api/v1/logs/actions/batch`: group commit,
redaction, rollups, live stream. Their ids are derived from the spans, so an exporter sending a
batch again is answered as a replay of what is stored; an item the recorder refuses (a body it
cannot store, an id recorded with another body) is taken out and counted as rejected, and the
others are recorded. The answer comes once all of them are committed.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourceMessage
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from pydantic import ValidationError

from app.actions.recorder import Recorder
from app.actions.schemas import MAX_BATCH, ActionCreate
from app.core.errors import Conflict, Unprocessable
from app.otel.mapping import Resource, record_action, span_action
from app.otel.values import attributes

MAX_REASONS = 5  # reasons named in a partial success; the count covers every rejected item
Item = TypeVar("Item", Span, LogRecord)


@dataclass
class Outcome:
    """What an export rejected, and why."""

    reasons: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.reasons)

    def message(self) -> str:
        shown = "; ".join(self.reasons[:MAX_REASONS])
        more = self.rejected - MAX_REASONS
        return shown + (f"; and {more} more" if more > 0 else "")


def _scope(scope: InstrumentationScope) -> dict[str, Any]:
    found: dict[str, Any] = {"name": scope.name}
    if scope.version:
        found["version"] = scope.version
    if scope.attributes:
        found["attributes"] = attributes(scope.attributes)
    return found


def _resource(resource: ResourceMessage, scope: InstrumentationScope) -> Resource:
    return Resource(attributes(resource.attributes), _scope(scope))


def _problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def _span_problem(span: Span) -> str | None:
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return f"span {span.name!r}: trace id must be 16 bytes, not all zero"
    if len(span.span_id) != 8 or not any(span.span_id):
        return f"span {span.name!r}: span id must be 8 bytes, not all zero"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return f"span {span.name!r}: parent span id must be 8 bytes"
    return None


def _record_problem(record: LogRecord) -> str | None:
    if record.trace_id and len(record.trace_id) != 16:
        return "log record: trace id must be 16 bytes"
    if record.span_id and len(record.span_id) != 8:
        return "log record: span id must be 8 bytes"
    return None


def _actions(
    items: Iterable[tuple[Item, Resource]],
    problem: Callable[[Item], str | None],
    action: Callable[[Item, Resource], dict[str, Any]],
    outcome: Outcome,
) -> list[ActionCreate]:
    """The actions of the valid items, each id once; the others' reasons go to `outcome`."""
    actions: dict[Any, ActionCreate] = {}
    for item, resource in items:
        if (reason := problem(item)) is not None:
            outcome.reasons.append(reason)
            continue
        try:
            created = ActionCreate.model_validate(action(item, resource))
        except ValidationError as exc:
            outcome.reasons.append(_problem(exc))
            continue
        actions.setdefault(created.id, created)  # a span sent twice in one export: once
    return list(actions.values())


def _refused(error: Unprocessable | Conflict) -> dict[int, str]:
    """The batch positions that the recorder named in a refusal, with its message."""
    refused: dict[int, str] = {}
    for item in error.detail if isinstance(error.detail, list) else []:
        loc = item.get("loc", [])
        if len(loc) > 1 and loc[0] == "body" and isinstance(loc[1], int):
            refused.setdefault(loc[1], str(item.get("msg")))
    return refused


async def record_actions(recorder: Recorder, actions: list[ActionCreate]) -> list[str]:
    """Record `actions` through the action recorder, in batches; the reasons of those refused.

    A refusal names the items at fault: they are taken out and the rest is recorded.
    """
    reasons: list[str] = []
    for start in range(0, len(actions), MAX_BATCH):
        batch = actions[start : start + MAX_BATCH]
        while batch:
            try:
                await recorder.record_batch(batch)
                break
            except (Unprocessable, Conflict) as error:
                refused = _refused(error)
                if not refused:
                    raise
                reasons += refused.values()
                batch = [item for i, item in enumerate(batch) if i not in refused]
    return reasons


def _spans(request: ExportTraceServiceRequest) -> Iterator[tuple[Span, Resource]]:
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            resource = _resource(resource_spans.resource, scope_spans.scope)
            for span in scope_spans.spans:
                yield span, resource


def _records(request: ExportLogsServiceRequest) -> Iterator[tuple[LogRecord, Resource]]:
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            resource = _resource(resource_logs.resource, scope_logs.scope)
            for record in scope_logs.log_records:
                yield record, resource


class OtlpReceiver:
    """Records one tenant's OTLP exports as actions."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def traces(self, request: ExportTraceServiceRequest) -> Outcome:
        outcome = Outcome()
        actions = _actions(_spans(request), _span_problem, span_action, outcome)
        outcome.reasons += await record_actions(self.recorder, actions)
        return outcome

    async def logs(self, request: ExportLogsServiceRequest) -> Outcome:
        outcome = Outcome()
        actions = _actions(_records(request), _record_problem, record_action, outcome)
        outcome.reasons += await record_actions(self.recorder, actions)
        return outcome
