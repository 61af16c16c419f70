"""Health, readiness, request ids, docs, and the 503 of an unreachable database."""

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/health")
    assert len(made.headers["x-request-id"]) == 32
    hostile = await client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert hostile.headers["x-request-id"] != "bad id\twith spaces"


async def test_responses_say_how_long_the_service_took(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/health"), await client.get("/api/v1/keys")):
        name, _, duration = response.headers["server-timing"].partition(";dur=")
        assert name == "app"
        assert float(duration) >= 0


async def test_error_responses_carry_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/keys", headers={"X-Request-ID": "req-401"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "req-401"


async def test_openapi_documents_every_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
            assert operation.get("description"), f"{method} {path} has no description"
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


@pytest.fixture
async def dead_database_client() -> httpx.AsyncClient:
    settings = Settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nothing",
        admin_token="test-admin-token-0123456789",
        environment="test",
        db_pool_timeout=2,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_unreachable_database_is_503_with_retry_after(
    dead_database_client: httpx.AsyncClient,
) -> None:
    async with dead_database_client as client:
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.headers["retry-after"]
        response = await client.get("/api/v1/keys", headers={"X-API-Key": "alk_0123456789ab_x"})
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert "Traceback" not in response.text
        assert response.json()["detail"]
        listing = await client.get(
            "/api/v1/admin/tenants", headers={"X-Admin-Token": "test-admin-token-0123456789"}
        )
        assert listing.status_code == 503
