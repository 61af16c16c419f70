"""Pure pieces that need no service: ids, Retry-After, the 422 index reader, the mapping."""

import email.utils
import time
import uuid

import httpx

from actionlog_client._events import job_logger_fields
from actionlog_client._ids import new_id
from actionlog_client._sender import _indexed, retry_after


def test_ids_are_uuid7_and_increase() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert abs((parsed.int >> 80) / 1000 - time.time()) < 5


def test_retry_after_seconds_and_dates() -> None:
    def answer(value: str) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": value})

    assert retry_after(answer("3")) == 3.0
    assert retry_after(answer("100000")) == 300.0  # capped
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after(answer(later)) or 0) <= 31
    assert retry_after(answer("soon")) is None
    assert retry_after(httpx.Response(503)) is None


def test_indexed_errors_only_when_every_error_names_an_index() -> None:
    detail = [
        {"loc": ["body", 2, "status"], "msg": "bad", "type": "enum"},
        {"loc": ["body", 0, "action_type"], "msg": "too long", "type": "string_too_long"},
    ]
    assert set(_indexed(detail, 3)) == {0, 2}
    assert _indexed([*detail, {"loc": ["body"], "msg": "x", "type": "y"}], 3) == {}
    assert _indexed(detail, 2) == {}  # an index beyond the batch: not trusted
    assert _indexed("Payload too large", 3) == {}


def test_job_logger_mapping() -> None:
    assert job_logger_fields(
        result_message="ok",
        action_details={"error_type": "ValueError", "n": 1},
        job_id="daily",
        job_execution_id="run-7",
        duration_seconds=1.2345,
    ) == {
        "metadata": {"error_type": "ValueError", "n": 1, "job_id": "daily"},
        "error_type": "ValueError",
        "response_data": {"result_message": "ok"},
        "correlation_id": "run-7",
        "execution_time_ms": 1234,
    }
