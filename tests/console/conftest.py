"""Fixtures of the console tests: browsers-as-HTTP-clients signed in with a tenant's key."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

ORIGIN = "http://testserver"


@asynccontextmanager
async def console_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own cookie jar, as one browser would be."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        yield client


async def sign_in(
    client: httpx.AsyncClient, key: str, next_: str = "/ui/actions"
) -> httpx.Response:
    return await client.post(
        "/ui/sign-in",
        data={"api_key": key, "next": next_},
        headers={"Origin": ORIGIN},
    )


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-out console client."""
    async with console_client(app) as client:
        yield client


SignIn = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def signed_in(app: Any) -> AsyncIterator[SignIn]:
    """Open a new console client signed in with `key` (closed after the test)."""
    clients: list[httpx.AsyncClient] = []

    async def open_(key: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url=ORIGIN)
        clients.append(client)
        response = await sign_in(client, key)
        assert response.status_code == 303, response.text
        return client

    yield open_
    for client in clients:
        await client.aclose()
