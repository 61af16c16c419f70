"""What every response keeps, even an unexpected 500 or an unreachable database, and what no
input can forge: request ids, timings, security headers, next-page links, log lines.
"""

import asyncio
import contextlib
import logging
import struct
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.logging import EscapingFormatter, escape_control
from tests.conftest import ADMIN_TOKEN, TenantHandle
from tests.hardening.conftest import asgi_client, free_port, live, serving

ACTIONS = "/api/v1/logs/actions"


def _add_broken_route(app: FastAPI) -> None:
    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)


@contextlib.contextmanager
def capture_logs() -> Iterator[list[str]]:
    """Lines written by the service's loggers from now on (after create_app, which sets the
    handlers), escaped as in production."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep()
    handler.setFormatter(EscapingFormatter("[%(request_id)s] %(message)s"))
    root = logging.getLogger("actionlog")
    from app.core.middleware import RequestIdFilter

    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def captured() -> Iterator[list[str]]:
    with capture_logs() as lines:
        yield lines


async def test_an_unexpected_error_is_a_json_500_with_its_request_id(settings: Settings) -> None:
    async with serving(settings, extra=_add_broken_route) as app, asgi_client(app) as client:
        with capture_logs() as captured:
            response = await client.get("/broken", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}
    assert response.headers["x-request-id"] == "req-500"
    assert response.headers["server-timing"].startswith("app;dur=")
    assert response.headers["connection"] == "close"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert any("[req-500] unhandled error: RuntimeError" in line for line in captured)
    assert any(line.startswith("[req-500] GET /broken 500") for line in captured)


async def test_after_a_500_the_client_reconnects_cleanly(settings: Settings) -> None:
    async with (
        serving(settings, extra=_add_broken_route) as app,
        live(app) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        for _ in range(3):
            assert (await client.get("/broken")).status_code == 500
            assert (await client.get("/health")).status_code == 200


class StartingUpPostgres:
    """A socket that answers every connection as PostgreSQL does while it recovers from a
    crash: SSL refused, then FATAL 57P03 "the database system is starting up"."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> "StartingUpPostgres":
        self.server = await asyncio.start_server(self._answer, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @staticmethod
    async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!I", await reader.readexactly(4))
                payload = await reader.readexactly(length - 4)
                if payload[:4] == struct.pack("!I", 80877103):  # SSLRequest
                    writer.write(b"N")
                    await writer.drain()
                    continue
                fields = b"".join(
                    kind + text + b"\0"
                    for kind, text in (
                        (b"S", b"FATAL"),
                        (b"V", b"FATAL"),
                        (b"C", b"57P03"),
                        (b"M", b"the database system is starting up"),
                    )
                )
                body = fields + b"\0"
                writer.write(b"E" + struct.pack("!I", len(body) + 4) + body)
                await writer.drain()
                break
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()


async def test_a_database_starting_up_is_503_with_retry_after() -> None:
    async with StartingUpPostgres() as pg:
        settings = Settings(
            database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{pg.port}/x",
            admin_token=ADMIN_TOKEN,
            environment="test",
            log_level="error",
            failed_auth_per_minute=0,
        )
        async with serving(settings) as app, asgi_client(app) as client:
            key = {"X-API-Key": "alk_0123456789ab_" + "x" * 32}
            listed = await client.get(ACTIONS, headers=key)
            recorded = await client.post(ACTIONS, json={"action_type": "x"}, headers=key)
            admin = await client.get(
                "/api/v1/admin/tenants", headers={"X-Admin-Token": ADMIN_TOKEN}
            )
            ready = await client.get("/ready")
    for response in (listed, recorded, admin, ready):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert "x-request-id" in response.headers


async def test_security_headers_on_every_response(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    for response in (
        await client.get("/health"),
        await client.get(ACTIONS, headers=tenant.headers),
        await client.get(ACTIONS),
        await client.post(ACTIONS, json={"action_type": "x"}, headers=tenant.headers),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in response.headers


async def test_hsts_when_the_public_url_is_https(settings: Settings) -> None:
    https = settings.model_copy(update={"public_url": "https://logs.example.com"})
    async with serving(https) as app, asgi_client(app) as client:
        response = await client.get("/health")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_no_server_header_from_the_cli_settings(settings: Settings) -> None:
    async with serving(settings) as app, live(app) as url, httpx.AsyncClient() as client:
        response = await client.get(f"{url}/health")
    assert "server" not in response.headers


async def _two_pages(client: httpx.AsyncClient, tenant: TenantHandle) -> httpx.Response:
    for name in ("a", "b"):
        await client.post(ACTIONS, json={"action_type": name}, headers=tenant.headers)
    return await client.get(
        ACTIONS, params={"limit": 1}, headers={**tenant.headers, "Host": "evil.example"}
    )


async def test_the_next_page_link_is_relative_never_the_callers_host(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    response = await _two_pages(client, tenant)
    link = response.headers["link"]
    assert link.startswith(f"<{ACTIONS}?limit=1&cursor=")
    assert "evil.example" not in link


async def test_the_next_page_link_uses_the_public_url(
    settings: Settings, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    public = settings.model_copy(update={"public_url": "https://logs.example.com/"})
    async with serving(public) as app, asgi_client(app) as other:
        response = await _two_pages(other, tenant)
    assert response.headers["link"].startswith(f"<https://logs.example.com{ACTIONS}?limit=1&")


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    response = await client.options(ACTIONS, headers=preflight)
    assert "access-control-allow-origin" not in response.headers


async def test_cors_allows_the_configured_origins(settings: Settings, tenant: TenantHandle) -> None:
    configured = settings.model_copy(update={"cors_origins": "https://app.example"})
    async with serving(configured) as app, asgi_client(app) as client:
        preflight = {
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-API-Key",
        }
        allowed = await client.options(ACTIONS, headers=preflight)
        other = await client.options(
            ACTIONS, headers={**preflight, "Origin": "https://evil.example"}
        )
        listed = await client.get(
            ACTIONS, headers={**tenant.headers, "Origin": "https://app.example"}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers
    assert listed.headers["access-control-allow-origin"] == "https://app.example"


@pytest.mark.parametrize("path", [ACTIONS, f"{ACTIONS}/batch", "/api/v1/logs/audits"])
async def test_json_sent_as_text_is_415(
    client: httpx.AsyncClient, tenant: TenantHandle, path: str
) -> None:
    headers = {**tenant.headers, "Content-Type": "text/plain"}
    response = await client.post(path, content=b'{"action_type": "x"}', headers=headers)
    assert response.status_code == 415
    assert response.json() == {"detail": "Content-Type must be application/json"}


async def test_log_lines_cannot_be_forged(
    client: httpx.AsyncClient, tenant: TenantHandle, captured: list[str]
) -> None:
    path = "/api/v1/logs/audits/resource/x/a%0d%0aFAKE%20LOG%20LINE"
    await client.get(path, headers=tenant.headers)
    (line,) = [line for line in captured if "FAKE LOG LINE" in line]
    assert "\n" not in line and "\r" not in line
    assert "a\\r\\nFAKE LOG LINE" in line


def test_control_characters_are_escaped() -> None:
    assert escape_control("a\r\nb\x1b[31m\x00\u2028") == "a\\r\\nb\\x1b[31m\\x00\\u2028"
    assert escape_control("plain ünïcode") == "plain ünïcode"
