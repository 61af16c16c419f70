"""`ActionLogMiddleware` on a real FastAPI application, delivering to the real service."""

from typing import Any

import httpx
from fastapi import FastAPI, HTTPException

from actionlog_client import ActionLogMiddleware

from .conftest import MakeLogger, Tenant


def _app(logger: Any) -> Any:
    app = FastAPI()
    inner = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        with logger.action("item_lookup", metadata={"item": item_id}):
            return {"id": item_id}

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(404, "no such thing")

    @app.get("/boom")
    async def boom() -> None:
        raise ZeroDivisionError("division by zero")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @inner.post("/hooks/{name}")
    async def hook(name: str) -> dict[str, str]:
        return {"name": name}

    app.mount("/v2", inner)

    def user(scope: Any) -> str | None:
        for name, value in scope["headers"]:
            if name == b"x-user":
                return str(value.decode())
        return None

    return ActionLogMiddleware(app, logger, user_id=user, service="shop-api")


async def test_requests_are_recorded(tenant: Tenant, make_logger: MakeLogger) -> None:
    logger = make_logger(tenant.url, tenant.key)
    transport = httpx.ASGITransport(app=_app(logger), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        headers = {"X-User": "u-42", "X-Request-ID": "req-1", "User-Agent": "pytest-client"}
        assert (await client.get("/items/7", headers=headers)).status_code == 200
        assert (await client.get("/items/8")).status_code == 200
        assert (await client.get("/missing")).status_code == 404
        assert (await client.get("/boom")).status_code == 500
        assert (await client.get("/health")).status_code == 200
        assert (await client.post("/v2/hooks/stripe")).status_code == 200
    assert logger.flush(10)
    rows = [tenant.action(r["id"]) for r in tenant.actions(action_type="http_request")]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_name.setdefault(row["action_name"], []).append(row)
    assert sorted(by_name) == [
        "GET /boom",
        "GET /items/{item_id}",
        "GET /missing",
        "POST /v2/hooks/{name}",
    ]  # /health is skipped; one name per route template
    first = next(r for r in by_name["GET /items/{item_id}"] if r["user_id"] == "u-42")
    assert first["status"] == "success" and first["service"] == "shop-api"
    assert first["correlation_id"] == "req-1" and first["user_agent"] == "pytest-client"
    assert first["ip_address"] == "127.0.0.1" and first["source"] == "http"
    assert first["metadata"] == {"method": "GET", "path": "/items/7", "status_code": 200}
    assert first["execution_time_ms"] is not None
    lookups = {r["parent_id"]: r for r in tenant.actions(action_type="item_lookup")}
    assert set(lookups) == {r["id"] for r in by_name["GET /items/{item_id}"]}
    assert lookups[first["id"]]["correlation_id"] == "req-1"  # nested in the request
    assert by_name["GET /missing"][0]["status"] == "warning"
    boom = by_name["GET /boom"][0]
    assert boom["status"] == "failure" and boom["error_type"] == "ZeroDivisionError"
    assert boom["metadata"]["status_code"] == 500
