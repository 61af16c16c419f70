"""The mapping's orders of precedence, on spans and log records built in memory (the way in,
over HTTP, is tested by the other files of this folder)."""

from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from app.otel.mapping import Resource, record_action, span_action

RESOURCE = Resource({"service.name": "svc"}, {"name": "scope"})


def _span(**attributes: str) -> Span:
    pairs = [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items()]
    return Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="op", attributes=pairs)


@pytest.mark.parametrize(
    ("attributes", "provider"),
    [
        ({"gen_ai.provider.name": "openai", "gen_ai.system": "old", "peer.service": "p"}, "openai"),
        ({"gen_ai.system": "anthropic", "peer.service": "p"}, "anthropic"),
        ({"peer.service": "billing", "server.address": "10.0.0.1"}, "billing"),
        ({"server.address": "api.example.com", "db.system": "postgresql"}, "api.example.com"),
        ({"db.system": "redis", "rpc.system": "grpc"}, "redis"),
        ({"rpc.system": "grpc"}, "grpc"),
        ({}, None),
    ],
)
def test_provider_precedence(attributes: dict[str, str], provider: str | None) -> None:
    assert span_action(_span(**attributes), RESOURCE)["provider_name"] == provider


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"actionlog.action_type": "crm_create", "gen_ai.operation.name": "chat"}, "crm_create"),
        ({"gen_ai.operation.name": "embeddings"}, "embeddings"),
        ({}, "op"),
    ],
)
def test_action_type_precedence(attributes: dict[str, str], expected: str) -> None:
    action = span_action(_span(**attributes), RESOURCE)
    assert action["action_type"] == expected
    assert "actionlog.action_type" not in action["metadata"]


def test_users_and_sessions() -> None:
    both = span_action(_span(**{"enduser.id": "a", "user.id": "b", "session.id": "s",
                                "gen_ai.conversation.id": "c"}), RESOURCE)  # fmt: skip
    assert (both["user_id"], both["session_id"]) == ("a", "s")
    second = span_action(_span(**{"user.id": "b", "gen_ai.conversation.id": "c"}), RESOURCE)
    assert (second["user_id"], second["session_id"]) == ("b", "c")


@pytest.mark.parametrize(
    ("number", "text", "status"),
    [(21, "", "failure"), (17, "", "failure"), (13, "", "warning"), (9, "", "success"),
     (0, "ERROR", "failure"), (0, "Warning", "warning"), (0, "", "success")],
)  # fmt: skip
def test_log_status_from_severity(number: int, text: str, status: str) -> None:
    record: Any = LogRecord(severity_number=number, severity_text=text)  # type: ignore[arg-type]
    assert record_action(record, RESOURCE)["status"] == status


def test_long_text_is_cut_to_its_column() -> None:
    action = span_action(_span(**{"gen_ai.operation.name": "x" * 500}), RESOURCE)
    assert len(action["action_type"]) == 100 and len(action["action_name"] or "") == 2
