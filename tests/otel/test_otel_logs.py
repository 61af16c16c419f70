"""Log records from the real OpenTelemetry SDK (its logging handler and OTLP/HTTP log
exporter) arrive as actions: type from the event name, name from the body, status from the
severity, linked to the span they were written in."""

import asyncio

import httpx
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from app.otel.values import span_action_id
from tests.conftest import TenantHandle
from tests.live import Process
from tests.otel.conftest import actions_of, recorded_spans


def _log_through_the_sdk(url: str, key: str) -> tuple[int, int]:
    """Three records emitted inside a span through the SDK's logs API; (trace id, span id)."""
    exporter = OTLPLogExporter(endpoint=f"{url}/v1/logs", headers={"X-API-Key": key})
    provider = LoggerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("shop")
    tracer_provider, _ = recorded_spans("checkout")
    try:
        with tracer_provider.get_tracer("shop").start_as_current_span("pay") as span:
            logger.emit(
                severity_number=SeverityNumber.INFO,
                body="order placed",
                attributes={"order.id": "o-1"},
                event_name="order.placed",
            )
            logger.emit(severity_number=SeverityNumber.WARN, body="card about to expire")
            logger.emit(
                severity_number=SeverityNumber.ERROR,
                severity_text="ERROR",
                body="payment declined",
                attributes={"enduser.id": "u-9"},
            )
            context = span.get_span_context()
    finally:
        provider.shutdown()
        tracer_provider.shutdown()
    return context.trace_id, context.span_id


async def test_log_records_arrive_as_actions_linked_to_their_span(
    service: Process, http: httpx.AsyncClient, agent_tenant: TenantHandle
) -> None:
    trace_id, span_id = await asyncio.to_thread(_log_through_the_sdk, service.url, agent_tenant.key)
    trace = f"{trace_id:032x}"
    actions = {
        a["action_name"]: a for a in await actions_of(http, agent_tenant, correlation_id=trace)
    }
    assert set(actions) == {"order placed", "card about to expire", "payment declined"}
    placed = actions["order placed"]
    assert placed["action_type"] == "order.placed" and placed["status"] == "success"
    assert placed["metadata"]["order.id"] == "o-1"
    assert actions["card about to expire"]["action_type"] == "log"
    assert actions["card about to expire"]["status"] == "warning"
    declined = actions["payment declined"]
    assert declined["status"] == "failure" and declined["error_message"] == "payment declined"
    assert declined["user_id"] == "u-9"
    span_action = str(span_action_id(trace_id.to_bytes(16, "big"), span_id.to_bytes(8, "big")))
    assert {a["parent_id"] for a in actions.values()} == {span_action}
    assert {a["service"] for a in actions.values()} == {"checkout"}
    assert declined["completed_at"] is not None and declined["execution_time_ms"] is None


async def test_a_log_export_sent_twice_is_stored_once(
    http: httpx.AsyncClient, agent_tenant: TenantHandle
) -> None:
    body = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "cron"}}]
                },
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000000",
                                "severityNumber": 9,
                                "body": {"stringValue": "nightly export done"},
                                "traceId": "aa" * 16,
                                "spanId": "bb" * 8,
                                "attributes": [
                                    {"key": "event.name", "value": {"stringValue": "job.done"}}
                                ],
                            },
                            {"severityNumber": 21, "body": {"kvlistValue": {"values": [
                                {"key": "job", "value": {"stringValue": "x"}}]}},
                             "traceId": "aa" * 16},
                        ]
                    }
                ],
            }
        ]
    }  # fmt: skip
    for _ in range(2):
        response = await http.post("/v1/logs", json=body, headers=agent_tenant.headers)
        assert response.status_code == 200, response.text
        assert response.json() == {}
    stored = await actions_of(http, agent_tenant, correlation_id="aa" * 16)
    assert sorted(a["status"] for a in stored) == ["failure", "success"]
    fatal = next(a for a in stored if a["status"] == "failure")
    assert fatal["action_name"] == '{"job":"x"}' and fatal["metadata"]["otel.body"] == {"job": "x"}
    assert fatal["parent_id"] is None
    done = next(a for a in stored if a["status"] == "success")
    assert done["action_type"] == "job.done" and done["service"] == "cron"
