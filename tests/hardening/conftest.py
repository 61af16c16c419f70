"""Helpers of the hardening tests: apps with their own settings, served over ASGI or by a real
uvicorn on a free port of 127.0.0.1 (stopped when the test ends)."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app


@contextlib.asynccontextmanager
async def serving(settings: Settings, *, extra: Any = None) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    if extra is not None:
        extra(app)
    async with app.router.lifespan_context(app):
        yield app


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def live(app: FastAPI) -> AsyncIterator[str]:
    """`app` served by uvicorn on 127.0.0.1 (a real socket, a real HTTP/1.1 server)."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        server_header=False,
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
