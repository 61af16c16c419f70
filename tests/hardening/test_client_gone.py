"""A client that goes away before sending the body it announced, and one that never finishes
it, against a real uvicorn on a socket: neither is a server error, and neither holds the
connection for ever (BODY_TIMEOUT_SECONDS)."""

import asyncio
import time
from urllib.parse import urlsplit

import httpx

from app.core.config import Settings
from tests.conftest import ADMIN_TOKEN, TenantHandle
from tests.hardening.conftest import asgi_client, live, serving
from tests.hardening.test_http_edges import capture_logs
from tests.hardening.test_metrics import _value

ACTIONS = "/api/v1/logs/actions"
TENANTS = "/api/v1/admin/tenants"
REQUESTS = "actionlog_http_requests_total"


def _head(path: str, credentials: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"{credentials}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def _send_part_and_leave(url: str, head: bytes) -> None:
    parts = urlsplit(url)
    _reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(head + b'{"action_type": "cut sho')
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def _wait_for_disconnects(lines: list[str], count: int) -> None:
    """Until the access log holds `count` lines with status 499 (or fail after 15 s)."""
    deadline = time.monotonic() + 15
    while sum(" 499 " in line for line in lines) < count:
        assert time.monotonic() < deadline, lines
        await asyncio.sleep(0.05)


async def test_a_client_gone_before_its_body_is_counted_as_such(
    settings: Settings, tenant: TenantHandle
) -> None:
    heads = {
        ACTIONS: _head(ACTIONS, f"X-API-Key: {tenant.key}", 200),  # the lane
        TENANTS: _head(TENANTS, f"X-Admin-Token: {ADMIN_TOKEN}", 200),  # a route
    }
    async with serving(settings) as app, asgi_client(app) as api, live(app) as url:
        before = (await api.get("/metrics")).text
        with capture_logs() as lines:
            for head in heads.values():
                await _send_part_and_leave(url, head)
            await _wait_for_disconnects(lines, len(heads))
        after = (await api.get("/metrics")).text
    assert _value(after, REQUESTS, method="POST", route=ACTIONS, status="499") == (
        _value(before, REQUESTS, method="POST", route=ACTIONS, status="499") + 1
    )
    assert _value(after, REQUESTS, method="POST", status="499") == (
        _value(before, REQUESTS, method="POST", status="499") + 2
    )
    assert _value(after, REQUESTS, status="500") == _value(before, REQUESTS, status="500")
    assert not [line for line in lines if "error" in line.lower() or " 500 " in line], lines
    assert sum("client disconnected" in line for line in lines) == 2


async def test_a_body_that_never_completes_is_408_and_closed(
    settings: Settings, tenant: TenantHandle
) -> None:
    quick = settings.model_copy(update={"body_timeout_seconds": 0.5})
    async with serving(quick) as app, live(app) as url:
        parts = urlsplit(url)
        for head in (
            _head(ACTIONS, f"X-API-Key: {tenant.key}", 200),
            _head(TENANTS, f"X-Admin-Token: {ADMIN_TOKEN}", 200),
        ):
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            try:
                writer.write(head + b'{"action_type": "sl')
                await writer.drain()
                answer = await asyncio.wait_for(reader.read(), 15)  # read() ends at the close
            finally:
                writer.close()
            status_line, _, rest = answer.partition(b"\r\n")
            assert status_line == b"HTTP/1.1 408 Request Timeout", answer
            assert b"connection: close" in rest.lower()
            assert b"BODY_TIMEOUT_SECONDS" in rest


async def test_a_body_sent_in_time_is_served(settings: Settings, tenant: TenantHandle) -> None:
    quick = settings.model_copy(update={"body_timeout_seconds": 5.0})
    async with serving(quick) as app, live(app) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.post(ACTIONS, json={"action_type": "x"}, headers=tenant.headers)
    assert response.status_code == 201, response.text
