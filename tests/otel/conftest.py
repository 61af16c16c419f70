"""Fixtures of the OpenTelemetry tests: a running `actionlog serve` on the backend's database,
tenants made through it, and the real OpenTelemetry SDK exporting to it."""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import ADMIN_TOKEN, TenantHandle, create_tenant
from tests.live import Process, start_service

ACTIONS = "/api/v1/logs/actions"


@pytest.fixture(scope="module")
async def service(database_url: str) -> AsyncIterator[Process]:
    """`actionlog serve` on the backend's test database, for the module's tests."""
    process = await start_service(database_url, ADMIN_TOKEN=ADMIN_TOKEN, ALERTS_ENABLED="false")
    try:
        yield process
    finally:
        await process.stop()


@pytest.fixture
async def http(service: Process) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
        yield client


@pytest.fixture
async def agent_tenant(http: httpx.AsyncClient) -> TenantHandle:
    return await create_tenant(http, "Traced")


@pytest.fixture
async def stranger(http: httpx.AsyncClient) -> TenantHandle:
    return await create_tenant(http, "Stranger")


def recorded_spans(
    service_name: str = "support-agent",
) -> tuple[TracerProvider, InMemorySpanExporter]:
    """A tracer provider whose finished spans are kept in memory, to be exported by hand."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


async def export(
    url: str, key: str, spans: Sequence[ReadableSpan], **options: Any
) -> SpanExportResult:
    """Export spans with the SDK's OTLP/HTTP exporter (in a thread: it is synchronous)."""
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers={"X-API-Key": key}, **options)
    try:
        return await asyncio.to_thread(exporter.export, spans)
    finally:
        exporter.shutdown()


async def actions_of(
    http: httpx.AsyncClient, tenant: TenantHandle, **params: Any
) -> list[dict[str, Any]]:
    """Every action of the tenant matching `params`, with payloads, oldest first."""
    response = await http.get(
        ACTIONS, params={"limit": 1000, "order": "asc", **params}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    full = []
    for summary in response.json():
        one = await http.get(f"{ACTIONS}/{summary['id']}", headers=tenant.headers)
        assert one.status_code == 200, one.text
        full.append(one.json())
    return full


Waiter = Callable[..., Any]
