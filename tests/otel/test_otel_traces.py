"""Spans from the real OpenTelemetry SDK, exported over OTLP/HTTP to a running service, are
recorded as actions: every mapped field, linked by parent and trace, stored once however often
a batch is exported again; JSON and gzipped bodies; a malformed body; a half-bad batch."""

import asyncio
import gzip
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Status as SpanStatus
from opentelemetry.trace import StatusCode

from app.otel.decode import decode
from app.otel.values import span_action_id
from tests.conftest import TenantHandle, create_key
from tests.live import Process
from tests.otel.conftest import actions_of, export, recorded_spans

INPUT = [{"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]}]
OUTPUT = [{"role": "assistant", "parts": [{"type": "text", "content": "On its way."}]}]


def agent_run() -> list[ReadableSpan]:
    """A traced agent run: invoke_agent with a chat (events on it) and a failing tool call."""
    provider, memory = recorded_spans()
    tracer = provider.get_tracer("agent-framework", "1.2.0")
    with tracer.start_as_current_span(
        "invoke_agent support",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "support",
            "gen_ai.provider.name": "openai",
            "enduser.id": "user-42",
            "gen_ai.conversation.id": "conv-7",
            "api_key": "sk-live-secret",
        },
    ):
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.output_tokens": 30,
                "gen_ai.input.messages": json.dumps(INPUT),
                "gen_ai.output.messages": json.dumps(OUTPUT),
                "session.id": "sess-1",
            },
        ) as chat:
            chat.add_event("gen_ai.choice", {"index": 0, "finish_reason": "stop"})
            chat.add_event("cache miss")
        with tracer.start_as_current_span(
            "execute_tool lookup_order",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"},
            record_exception=False,
            set_status_on_exception=False,
        ) as tool:
            try:
                raise TimeoutError("order service did not answer")
            except TimeoutError as exc:
                tool.record_exception(exc)
                tool.set_status(SpanStatus(StatusCode.ERROR, "lookup timed out"))
    spans = list(memory.get_finished_spans())
    provider.shutdown()
    return spans


def by_name(actions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {action["action_name"]: action for action in actions}


async def test_an_agent_run_arrives_with_every_field_linked_by_parent_and_trace(
    service: Process, http: httpx.AsyncClient, agent_tenant: TenantHandle
) -> None:
    spans = agent_run()
    children, root = spans[:-1], spans[-1]
    assert root.name == "invoke_agent support"
    # the children first: they link to a parent that is not stored yet
    assert await export(service.url, agent_tenant.key, children) is SpanExportResult.SUCCESS
    assert await export(service.url, agent_tenant.key, [root]) is SpanExportResult.SUCCESS

    trace_id = f"{root.context.trace_id:032x}"
    actions = by_name(await actions_of(http, agent_tenant, correlation_id=trace_id))
    assert set(actions) == {"invoke_agent support", "chat gpt-4o", "execute_tool lookup_order"}
    agent = actions["invoke_agent support"]
    chat = actions["chat gpt-4o"]
    tool = actions["execute_tool lookup_order"]

    assert agent["id"] == str(span_action_id(root.context.trace_id.to_bytes(16, "big"),
                                             root.context.span_id.to_bytes(8, "big")))  # fmt: skip
    assert agent["parent_id"] is None
    assert chat["parent_id"] == tool["parent_id"] == agent["id"]
    assert {a["correlation_id"] for a in actions.values()} == {trace_id}
    assert agent["action_type"] == "invoke_agent"
    assert chat["action_type"] == "chat" and tool["action_type"] == "execute_tool"
    assert agent["provider_name"] == chat["provider_name"] == "openai"
    assert {a["service"] for a in actions.values()} == {"support-agent"}
    assert {a["source"] for a in actions.values()} == {"opentelemetry"}
    assert agent["user_id"] == "user-42" and agent["session_id"] == "conv-7"
    assert chat["session_id"] == "sess-1"  # session.id before gen_ai.conversation.id

    assert agent["status"] == chat["status"] == "success"
    assert tool["status"] == "failure"
    assert tool["error_message"] == "lookup timed out"
    assert tool["error_type"] == "TimeoutError"
    assert [step["step"] for step in tool["steps"]] == ["exception"]
    assert tool["steps"][0]["status"] == "error"

    started = datetime.fromtimestamp(root.start_time / 1e9, UTC)
    assert agent["started_at"].startswith(started.isoformat()[:19])
    expected_ms = round((root.end_time - root.start_time) / 1e6)
    assert abs(agent["execution_time_ms"] - expected_ms) <= 1
    assert [step["step"] for step in chat["steps"]] == ["gen_ai.choice", "cache miss"]
    assert chat["steps"][0]["details"] == {"index": 0, "finish_reason": "stop"}

    assert chat["request_payload"] == {"messages": INPUT}
    assert chat["response_data"] == {"messages": OUTPUT}
    assert chat["metadata"]["gen_ai.request.model"] == "gpt-4o"
    assert chat["metadata"]["gen_ai.usage.input_tokens"] == 120
    assert "gen_ai.input.messages" not in chat["metadata"]
    assert chat["metadata"]["otel.resource"]["service.name"] == "support-agent"
    assert chat["metadata"]["otel.scope"] == {"name": "agent-framework", "version": "1.2.0"}
    assert chat["metadata"]["otel.kind"] == "internal"
    assert agent["metadata"]["api_key"] == "[REDACTED]"  # redacted like any payload


async def test_a_reexported_batch_stores_nothing_twice(
    service: Process, http: httpx.AsyncClient, agent_tenant: TenantHandle
) -> None:
    spans = agent_run()
    for _ in range(3):
        assert await export(service.url, agent_tenant.key, spans) is SpanExportResult.SUCCESS
    trace_id = f"{spans[0].context.trace_id:032x}"
    assert len(await actions_of(http, agent_tenant, correlation_id=trace_id)) == 3
    # a batch mixing stored spans with a new trace stores only the new ones
    more = agent_run()
    assert await export(service.url, agent_tenant.key, spans + more) is SpanExportResult.SUCCESS
    new_trace = f"{more[0].context.trace_id:032x}"
    assert len(await actions_of(http, agent_tenant, correlation_id=trace_id)) == 3
    assert len(await actions_of(http, agent_tenant, correlation_id=new_trace)) == 3


async def test_gzipped_protobuf_through_the_exporter(
    service: Process, http: httpx.AsyncClient, agent_tenant: TenantHandle
) -> None:
    spans = agent_run()
    result = await export(service.url, agent_tenant.key, spans, compression=Compression.Gzip)
    assert result is SpanExportResult.SUCCESS
    trace_id = f"{spans[0].context.trace_id:032x}"
    assert len(await actions_of(http, agent_tenant, correlation_id=trace_id)) == 3


def json_export(*spans: dict[str, Any]) -> dict[str, Any]:
    """An OTLP JSON export request (hex ids, camelCase names, as the specification has it)."""
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]
                },
                "scopeSpans": [{"scope": {"name": "hand-made"}, "spans": list(spans)}],
            }
        ]
    }


TRACE = "5b8efff798038103d269b633813fc60c"


def json_span(span_id: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000250000000",
        "attributes": [
            {"key": "db.system", "value": {"stringValue": "postgresql"}},
            {"key": "rows", "value": {"intValue": "3"}},
            {"key": "ratio", "value": {"doubleValue": "NaN"}},
        ],
        **extra,
    }


async def test_json_and_gzipped_json_bodies(
    http: httpx.AsyncClient, agent_tenant: TenantHandle
) -> None:
    body = json_export(json_span("eee19b7ec3c1b174", "SELECT invoices"))
    response = await http.post(
        "/v1/traces", content=json.dumps(body), headers={**agent_tenant.headers,
        "Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    zipped = gzip.compress(
        json.dumps(json_export(json_span("eee19b7ec3c1b175", "UPDATE"))).encode()
    )
    response = await http.post(
        "/v1/traces",
        content=zipped,
        headers={**agent_tenant.headers, "Content-Type": "application/json",
                 "Content-Encoding": "gzip"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    actions = by_name(await actions_of(http, agent_tenant, correlation_id=TRACE))
    assert set(actions) == {"SELECT invoices", "UPDATE"}
    select = actions["SELECT invoices"]
    assert select["provider_name"] == "postgresql" and select["service"] == "billing"
    assert select["execution_time_ms"] == 250
    assert select["started_at"].startswith("2023-11-14T22:13:20")
    assert select["metadata"]["rows"] == 3 and select["metadata"]["otel.kind"] == "client"
    assert select["metadata"]["ratio"] == "nan"  # JSON has no NaN: kept as text


async def test_a_malformed_body_is_a_400_in_the_request_encoding(
    http: httpx.AsyncClient, agent_tenant: TenantHandle
) -> None:
    protobuf = {**agent_tenant.headers, "Content-Type": "application/x-protobuf"}
    response = await http.post("/v1/traces", content=b"\xff\xff\xff\xff", headers=protobuf)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/x-protobuf"
    status = Status.FromString(response.content)
    assert status.code == 3 and "ExportTraceServiceRequest" in status.message

    as_json = {**agent_tenant.headers, "Content-Type": "application/json"}
    for bad in (b"{not json", b'{"resourceSpans": "many"}', b'{"resourceSpans": [{"scopeSpans":'
                b' [{"spans": [{"traceId": "xyz"}]}]}]}'):  # fmt: skip
        response = await http.post("/v1/traces", content=bad, headers=as_json)
        assert response.status_code == 400, bad
        assert response.json()["code"] == 3 and response.json()["detail"]
    zipped = {**protobuf, "Content-Encoding": "gzip"}
    response = await http.post("/v1/traces", content=b"not gzip at all", headers=zipped)
    assert response.status_code == 400 and "gzip" in Status.FromString(response.content).message
    response = await http.post("/v1/traces", content=b"{}", headers={
        **agent_tenant.headers, "Content-Type": "text/plain"})  # fmt: skip
    assert response.status_code == 415


async def test_a_half_bad_batch_is_a_partial_success(
    http: httpx.AsyncClient, agent_tenant: TenantHandle
) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    good = {**json_span("b7ad6b7169203331", "good one"), "traceId": trace}
    short_id = {**json_span("b7ad6b71", "short span id"), "traceId": trace}
    backwards = {
        **json_span("b7ad6b7169203332", "ends before it starts"),
        "traceId": trace,
        "endTimeUnixNano": "1600000000000000000",
    }
    response = await http.post(
        "/v1/traces",
        content=as_protobuf(json_export(good, short_id, backwards)),
        headers={**agent_tenant.headers, "Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200, response.text
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 2
    assert "span id must be 8 bytes" in answer.partial_success.error_message
    assert "completed_at" in answer.partial_success.error_message
    stored = await actions_of(http, agent_tenant, correlation_id=trace)
    assert [action["action_name"] for action in stored] == ["good one"]

    response = await http.post(
        "/v1/traces",
        json=json_export({**good, "spanId": "00000000000000aa", "traceId": "00" * 16}),
        headers=agent_tenant.headers,
    )
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"


def as_protobuf(document: dict[str, Any]) -> bytes:
    """The protobuf encoding of an OTLP JSON document (by the receiver's own JSON reader)."""
    body = json.dumps(document).encode()
    return decode(ExportTraceServiceRequest, body, "json").SerializeToString()


async def test_keys_scopes_and_tenants(
    service: Process,
    http: httpx.AsyncClient,
    agent_tenant: TenantHandle,
    stranger: TenantHandle,
) -> None:
    spans = agent_run()
    protobuf = {"Content-Type": "application/x-protobuf"}
    response = await http.post("/v1/traces", content=b"", headers=protobuf)
    assert response.status_code == 401
    assert Status.FromString(response.content).code == 16
    reader = await create_key(http, agent_tenant, ["read"])
    assert await export(service.url, reader, spans) is SpanExportResult.FAILURE
    response = await http.post("/v1/traces", json={}, headers={"X-API-Key": reader})
    assert response.status_code == 403 and response.json()["code"] == 7
    writer = await create_key(http, agent_tenant, ["write"])
    response = await http.post("/v1/traces", json={}, headers={"Authorization": f"Bearer {writer}"})
    assert response.status_code == 200

    # the same spans for two tenants: two unrelated records, each seen by its tenant only
    assert await export(service.url, agent_tenant.key, spans) is SpanExportResult.SUCCESS
    assert await export(service.url, stranger.key, spans[:1]) is SpanExportResult.SUCCESS
    trace_id = f"{spans[0].context.trace_id:032x}"
    mine = await actions_of(http, agent_tenant, correlation_id=trace_id)
    theirs = await actions_of(http, stranger, correlation_id=trace_id)
    assert len(mine) == 3 and len(theirs) == 1
    only_mine = next(a for a in mine if a["id"] != theirs[0]["id"])
    hidden = await http.get(f"/api/v1/logs/actions/{only_mine['id']}", headers=stranger.headers)
    assert hidden.status_code == 404


async def test_the_sdk_configured_by_two_environment_variables(
    service: Process,
    http: httpx.AsyncClient,
    agent_tenant: TenantHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What docs/opentelemetry.md shows: the endpoint and the key header, nothing else."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", service.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%20{agent_tenant.key}")
    spans = agent_run()
    exporter = OTLPSpanExporter()
    try:
        assert await asyncio.to_thread(exporter.export, spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    trace_id = f"{spans[0].context.trace_id:032x}"
    assert len(await actions_of(http, agent_tenant, correlation_id=trace_id)) == 3


async def test_a_span_id_reused_for_another_span_is_refused_alone(
    http: httpx.AsyncClient, agent_tenant: TenantHandle
) -> None:
    trace = "6e0c63257de34c92bf9efcd03927272e"
    first = {**json_span("00f067aa0ba902b7", "first"), "traceId": trace}
    response = await http.post("/v1/traces", json=json_export(first), headers=agent_tenant.headers)
    assert response.json() == {}
    # the same ids, another span (a buggy id generator): refused; the new span beside it stored
    other = {**first, "name": "another"}
    new = {**json_span("00f067aa0ba902b8", "new"), "traceId": trace}
    response = await http.post(
        "/v1/traces", json=json_export(other, new), headers=agent_tenant.headers
    )
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "already recorded with a different body" in partial["errorMessage"]
    stored = await actions_of(http, agent_tenant, correlation_id=trace)
    assert sorted(action["action_name"] for action in stored) == ["first", "new"]
