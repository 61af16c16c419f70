"""Helpers for tests over real HTTP: an in-process server, `actionlog serve` processes, SSE.

httpx's ASGI transport collects a whole response before returning it, so streams are tested
over real sockets: the session's application served by uvicorn in the test's event loop, or
a separate `actionlog serve` process (several workers) on the test database.
"""

import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_in_loop(app: Any) -> AsyncIterator[str]:
    """Serve `app` (its lifespan already running) on a free loopback port; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="error")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


@dataclass
class Process:
    process: asyncio.subprocess.Process
    url: str

    async def stop(self, kill: bool = False) -> None:
        """Stop the service (SIGTERM, graceful); on a machine too loaded for it to finish its
        shutdown within 30 s, kill it, so that no test leaves a process behind."""
        if self.process.returncode is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(self.process.wait()), timeout=30)
        except TimeoutError:
            self.process.kill()
            await asyncio.wait_for(self.process.wait(), timeout=30)


async def start_service(database_url: str, workers: int = 1, **env: str) -> Process:
    """`actionlog serve` on a free port with these settings; returns once /ready answers."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "warning",
        "ENVIRONMENT": "test",
        **env,
    }
    output = None if os.environ.get("LIVE_DEBUG") else asyncio.subprocess.DEVNULL  # to see logs
    process = await asyncio.create_subprocess_exec(
        str(BIN / "actionlog"), "serve", "--port", str(port), "--workers", str(workers),
        env=environment, stdout=output, stderr=output,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(300):
            if process.returncode is not None:
                raise RuntimeError(f"actionlog serve exited with {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/ready")).status_code == 200:
                    return Process(process, url)
            await asyncio.sleep(0.1)
    process.kill()
    raise RuntimeError("actionlog serve did not start")


@dataclass
class SSE:
    event: str | None
    id: str | None
    data: str | None
    retry: int | None = None
    comment: str | None = None

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class SSEReader:
    """Reads the events of an open text/event-stream response, comments included.

    A task parses the response into a queue, so that waiting with a time limit never cancels
    the read of the response itself.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._queue: asyncio.Queue[SSE | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._parse())

    async def _parse(self) -> None:
        fields: dict[str, str] = {}
        comment = None
        try:
            async for line in self.response.aiter_lines():
                if line == "":
                    if fields or comment is not None:
                        retry = fields.get("retry")
                        self._queue.put_nowait(SSE(
                            fields.get("event"), fields.get("id"), fields.get("data"),
                            int(retry) if retry else None, comment,
                        ))  # fmt: skip
                    fields, comment = {}, None
                    continue
                if line.startswith(":"):
                    comment = line[1:].strip()
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                fields[name] = f"{fields[name]}\n{value}" if name in fields else value
        finally:
            self._queue.put_nowait(None)

    async def next(self, within: float = 10.0) -> SSE:
        item = await asyncio.wait_for(self._queue.get(), within)
        if item is None:
            self._queue.put_nowait(None)
            raise EOFError("stream closed")
        return item

    async def events(self, count: int, within: float = 10.0) -> list[SSE]:
        """The next `count` events that carry data (comments and pings skipped)."""
        found: list[SSE] = []
        while len(found) < count:
            item = await self.next(within)
            if item.data is not None:
                found.append(item)
        return found

    async def quiet(self, seconds: float) -> list[SSE]:
        """The data events that arrive within `seconds` (usually none)."""
        found: list[SSE] = []
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                item = await self.next(left)
            except (TimeoutError, EOFError):
                break
            if item.data is not None:
                found.append(item)
        return found

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


@contextlib.asynccontextmanager
async def sse(
    base_url: str, key: str, params: Any = None, headers: dict[str, str] | None = None
) -> AsyncIterator[SSEReader]:
    """An open stream at `base_url`; the reader has skipped the opening `retry:` message."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30.0)) as http,
        http.stream(
            "GET",
            "/api/v1/logs/stream",
            params=params,
            headers={"X-API-Key": key, **(headers or {})},
        ) as response,
    ):
        assert response.status_code == 200, await response.aread()
        reader = SSEReader(response)
        try:
            opening = await reader.next()
            assert opening.retry is not None
            yield reader
        finally:
            await reader.close()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """A real HTTP receiver on loopback: records each request; answers `status` (or the next
    of `script`)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[int] = []
        self.status = 204
        self.arrived = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.received.append(Received(headers, body))
        self.arrived.set()
        status = self.script.pop(0) if self.script else self.status
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def wait_for(self, count: int, within: float = 20.0) -> list[Received]:
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    """A receiver and its URL."""
    receiver = WebhookReceiver()
    async with serve_in_loop(receiver) as url:
        yield receiver, f"{url}/hooks"
