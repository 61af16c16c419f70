"""The dedicated PostgreSQL connection on which a worker LISTENs for stream notifications.

It is not a pool connection: LISTEN lasts as long as its session, and a pooled connection
would be handed to other work. The connection is checked every few seconds; when it broke
(a database restart, a network cut, a terminated backend) it is opened again with a growing
pause, and once listening again the hub re-reads every tenant it follows (the catch-up read),
since notifications sent in between are lost.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL

from app.streamlog.record import CHANNEL

logger = logging.getLogger("actionlog.streams")
APPLICATION_NAME = "actionlog-stream-listener"
CHECK_SECONDS = 2.0
MAX_PAUSE = 10.0


def _tenants(payload: str) -> list[UUID] | None:
    try:
        return [UUID(part) for part in payload.split(",") if part]
    except ValueError:
        return None  # unreadable: read every tenant


class PgListener:
    def __init__(self, url: URL, on_events: Callable[[Iterable[UUID] | None], None]) -> None:
        self.dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.on_events = on_events
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self.on_events(_tenants(payload))

    async def _run(self) -> None:
        pause = 0.5
        while True:
            connection = None
            try:
                connection = await asyncpg.connect(
                    self.dsn, timeout=5, server_settings={"application_name": APPLICATION_NAME}
                )
                await connection.add_listener(CHANNEL, self._notified)
                self.connected.set()
                self.on_events(None)  # whatever was committed while not listening
                pause = 0.5
                while True:
                    await asyncio.sleep(CHECK_SECONDS)
                    await connection.fetchval("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("stream listener lost: %s: %s", type(exc).__name__, exc)
            finally:
                self.connected.clear()
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.terminate()
            self.reconnects += 1
            await asyncio.sleep(pause)
            pause = min(MAX_PAUSE, pause * 2)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
