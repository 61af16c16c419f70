"""The OTLP/HTTP receiver: `POST /v1/traces` and `POST /v1/logs`, as OpenTelemetry exporters
and the Collector's `otlphttp` exporter call them.

The paths, encodings and answers are those of the OTLP specification: a body in binary protobuf
or JSON (optionally gzipped), the API key as `X-API-Key` or `Authorization: Bearer` (what
`OTEL_EXPORTER_OTLP_HEADERS` sends) with the `write` scope; 200 with an export response in the
request's encoding, whose `partial_success` counts the spans or records rejected and says why;
errors as a `google.rpc.Status` in the request's encoding (JSON also carries the service's
usual `detail`): 400 for a body that cannot be read, 401, 403, 413, 415, and 429 and 503 with
`Retry-After`, which exporters honour before they retry.
"""

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from app.actions.dependencies import RecorderDep
from app.core.errors import BadRequest, Forbidden, Unauthorized, error_response, error_responses
from app.core.state import core_state
from app.otel.decode import (
    JSON,
    PROTOBUF,
    Encoding,
    UnsupportedMediaType,
    decode,
    encode,
    encoding_of,
    inflate,
)
from app.otel.service import OtlpReceiver

TRACES, LOGS = "/v1/traces", "/v1/logs"
PATHS = frozenset({TRACES, LOGS})
# google.rpc.Code of each HTTP status the receiver answers with
_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 429: 8, 503: 14}
_MEDIA_TYPES = {"protobuf": PROTOBUF, "json": JSON}


def _status_body(detail: Any, status: int, encoding: Encoding) -> bytes:
    message = detail if isinstance(detail, str) else str(detail)
    status_message = Status(code=_CODES.get(status, 13), message=message)
    if encoding == "protobuf":
        return bytes(status_message.SerializeToString())
    return json.dumps(
        {"code": status_message.code, "message": message, "detail": detail},
        separators=(",", ":"),
    ).encode()


class OtlpRoute(APIRoute):
    """A route whose errors are `google.rpc.Status` messages in the request's encoding."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                retry_after = str(core_state(request.app).settings.retry_after_seconds)
                rendered = error_response(exc, retry_after)
                try:
                    encoding = encoding_of(request.headers.get("content-type"))
                except UnsupportedMediaType:
                    encoding = "json"
                detail = _detail(rendered.body)
                headers = {
                    k: v
                    for k, v in rendered.headers.items()
                    if k.lower() not in ("content-length", "content-type")
                }
                return Response(
                    _status_body(detail, rendered.status_code, encoding),
                    status_code=rendered.status_code,
                    headers=headers,
                    media_type=_MEDIA_TYPES[encoding],
                )

        return handle


def _detail(body: bytes | memoryview) -> Any:
    return json.loads(bytes(body))["detail"]


_RESOURCE = {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]}
# Bodies Swagger UI's "Try it out" can send as they are: one span, one log record (OTLP JSON).
_EXAMPLES: dict[str, Any] = {
    "ExportTraceServiceRequest": {
        "resourceSpans": [
            {
                "resource": _RESOURCE,
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "chat gpt-4o",
                                "startTimeUnixNano": "1764581400000000000",
                                "endTimeUnixNano": "1764581401250000000",
                                "attributes": [
                                    {
                                        "key": "gen_ai.operation.name",
                                        "value": {"stringValue": "chat"},
                                    },
                                    {
                                        "key": "gen_ai.provider.name",
                                        "value": {"stringValue": "openai"},
                                    },
                                    {
                                        "key": "gen_ai.request.model",
                                        "value": {"stringValue": "gpt-4o"},
                                    },
                                    {
                                        "key": "gen_ai.usage.input_tokens",
                                        "value": {"intValue": "812"},
                                    },
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    },
    "ExportLogsServiceRequest": {
        "resourceLogs": [
            {
                "resource": _RESOURCE,
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1764581400000000000",
                                "severityText": "INFO",
                                "severityNumber": 9,
                                "body": {"stringValue": "order 1042 exported"},
                                "attributes": [
                                    {"key": "event.name", "value": {"stringValue": "s3_export"}}
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    },
}


def _openapi(request: str) -> dict[str, Any]:
    """The request body of an OTLP route in OpenAPI (read by the route itself, not FastAPI)."""
    described = f"An OTLP {request} message: binary protobuf, or its JSON encoding (hex ids)"
    return {
        "requestBody": {
            "required": True,
            "description": described + "; `Content-Encoding: gzip` accepted",
            "content": {
                PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                JSON: {"schema": {"type": "object"}, "example": _EXAMPLES[request]},
            },
        }
    }


def _answer(description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": description,
            "content": {
                PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                JSON: {
                    "schema": {
                        "type": "object",
                        "properties": {"partialSuccess": {"type": "object"}},
                    }
                },
            },
        },
        **error_responses(BadRequest, Unauthorized, Forbidden),
        415: {"description": "A body that is neither protobuf nor JSON"},
    }


router = APIRouter(prefix="/v1", tags=["opentelemetry"], route_class=OtlpRoute)


async def _read(request: Request, message: type[Any]) -> tuple[Encoding, Any]:
    encoding = encoding_of(request.headers.get("content-type"))
    limit = core_state(request.app).settings.max_batch_body_bytes
    body = inflate(await request.body(), request.headers.get("content-encoding"), limit)
    return encoding, decode(message, body, encoding)


def _respond(message: Any, encoding: Encoding) -> Response:
    return Response(encode(message, encoding), media_type=_MEDIA_TYPES[encoding])


@router.post(
    "/traces",
    response_class=Response,
    openapi_extra=_openapi("ExportTraceServiceRequest"),
    responses=_answer("Spans recorded; `partialSuccess` counts the rejected ones and says why"),
)
async def export_traces(request: Request, recorder: RecorderDep) -> Response:
    """Record spans as actions (OTLP/HTTP: protobuf or JSON, gzip accepted; `write` scope)."""
    encoding, export = await _read(request, ExportTraceServiceRequest)
    outcome = await OtlpReceiver(recorder).traces(export)
    answer = ExportTraceServiceResponse()
    if outcome.rejected:
        answer.partial_success.CopyFrom(
            ExportTracePartialSuccess(
                rejected_spans=outcome.rejected, error_message=outcome.message()
            )
        )
    return _respond(answer, encoding)


@router.post(
    "/logs",
    response_class=Response,
    openapi_extra=_openapi("ExportLogsServiceRequest"),
    responses=_answer("Records recorded; `partialSuccess` counts the rejected ones and says why"),
)
async def export_logs(request: Request, recorder: RecorderDep) -> Response:
    """Record log records as actions (OTLP/HTTP: protobuf or JSON, gzip accepted; `write` scope)."""
    encoding, export = await _read(request, ExportLogsServiceRequest)
    outcome = await OtlpReceiver(recorder).logs(export)
    answer = ExportLogsServiceResponse()
    if outcome.rejected:
        answer.partial_success.CopyFrom(
            ExportLogsPartialSuccess(
                rejected_log_records=outcome.rejected, error_message=outcome.message()
            )
        )
    return _respond(answer, encoding)
