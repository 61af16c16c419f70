"""The receiver's refusals as OTLP exporters expect them: 429 with Retry-After (so they wait
before retrying), 413 for a body over the batch limit, sent or once inflated."""

import gzip
from collections.abc import AsyncIterator

import httpx
import pytest
from google.rpc.status_pb2 import Status

from tests.conftest import ADMIN_TOKEN, create_tenant
from tests.live import Process, start_service

LIMIT = 4096


@pytest.fixture(scope="module")
async def strict_service(database_url: str) -> AsyncIterator[Process]:
    """A service with a write rate limit of 2 per minute and a 4 KiB batch body limit."""
    process = await start_service(
        database_url,
        ADMIN_TOKEN=ADMIN_TOKEN,
        ALERTS_ENABLED="false",
        RATE_LIMIT_WRITE_PER_MINUTE="2",
        MAX_BATCH_BODY_BYTES=str(LIMIT),
        MAX_BODY_BYTES=str(LIMIT),
    )
    try:
        yield process
    finally:
        await process.stop()


async def test_over_the_rate_limit_is_a_429_with_retry_after(strict_service: Process) -> None:
    async with httpx.AsyncClient(base_url=strict_service.url, timeout=60) as http:
        tenant = await create_tenant(http, "Limited")
        protobuf = {**tenant.headers, "Content-Type": "application/x-protobuf"}
        answers = [await http.post("/v1/traces", content=b"", headers=protobuf) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[2]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["content-type"] == "application/x-protobuf"
    assert Status.FromString(refused.content).code == 8  # RESOURCE_EXHAUSTED


async def test_a_body_over_the_limit_is_a_413_sent_or_inflated(strict_service: Process) -> None:
    async with httpx.AsyncClient(base_url=strict_service.url, timeout=60) as http:
        tenant = await create_tenant(http, "Big bodies")
        as_json = {**tenant.headers, "Content-Type": "application/json"}
        padded = b'{"resourceSpans": [], "pad": "' + b"x" * LIMIT + b'"}'
        response = await http.post("/v1/traces", content=padded, headers=as_json)
        assert response.status_code == 413
        bomb = gzip.compress(padded * 100)  # small on the wire, 400 KiB inflated
        assert len(bomb) < LIMIT
        zipped = {**as_json, "Content-Encoding": "gzip"}
        response = await http.post("/v1/logs", content=bomb, headers=zipped)
    assert response.status_code == 413
    assert "once inflated" in response.json()["message"]
