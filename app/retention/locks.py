"""One pruner at a time: per tenant and kind, and for the scheduler across every process.

Archive clean-up removes files of runs that did not finish, so two runs over the same tenant
and kind must never overlap. On PostgreSQL that is a session advisory lock, held on its own
connection for the run (a process that dies drops its connection, and the lock with it);
concurrent workers and hosts of one database queue on it. On SQLite (one host) it is an
`flock` on a file beside the database, taken by this process under an asyncio lock, so a cron
`actionlog prune` and a running server do not overlap either.
"""

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine


class Busy(Exception):
    """Another process holds the lock."""


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for `name`."""
    return int.from_bytes(
        hashlib.sha256(f"actionlog:{name}".encode()).digest()[:8], "big", signed=True
    )


class RetentionLocks:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._local = asyncio.Lock()
        self._turn = asyncio.Lock()
        database = make_url(str(engine.url)).database
        self._file = Path(f"{database}.retention.lock") if database else None

    @contextlib.asynccontextmanager
    async def scheduler_turn(self) -> AsyncIterator[None]:
        """The scheduler's turn: Busy when another process's scheduler is running.

        On SQLite each piece of work takes the file lock itself (`hold`), so the turn only
        keeps this process's runs from overlapping.
        """
        if self.postgres:
            async with self._advisory("scheduler", wait=False):
                yield
            return
        if self._turn.locked():
            raise Busy("scheduler")
        async with self._turn:
            yield

    @contextlib.asynccontextmanager
    async def hold(self, name: str, wait: bool = True) -> AsyncIterator[None]:
        """Hold the lock `name` (wait for it, or raise Busy at once when `wait` is False)."""
        if self.postgres:
            async with self._advisory(name, wait):
                yield
            return
        if not wait and self._local.locked():
            raise Busy(name)
        async with self._local, self._flock(wait):
            yield

    @contextlib.asynccontextmanager
    async def _advisory(self, name: str, wait: bool) -> AsyncIterator[None]:
        key = lock_key(name)
        async with self.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            if wait:
                await autocommit.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            elif not await autocommit.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}):
                raise Busy(name)
            try:
                yield
            finally:
                await autocommit.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})

    @contextlib.asynccontextmanager
    async def _flock(self, wait: bool) -> AsyncIterator[None]:
        if self._file is None or self._file.name.startswith(":memory:"):
            yield
            return
        fd = os.open(self._file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not wait:
                        raise Busy("retention") from None
                    await asyncio.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock
