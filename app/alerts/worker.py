"""The alerting background work of a worker process: the evaluator and the outbox sender."""

import asyncio
import contextlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.alerts.evaluator import AlertEvaluator
from app.alerts.sender import OutboxSender
from app.core.config import Settings


class AlertWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        queue_engine: AsyncEngine | None = None,
    ) -> None:
        self.settings = settings
        self.sender = OutboxSender(engine, settings, queue_engine)
        self.evaluator = AlertEvaluator(
            engine, sessionmaker, settings, self.sender.wake, queue_engine=queue_engine
        )
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self) -> None:
        if self.settings.alerts_enabled and not self._tasks:
            self._tasks = [
                asyncio.create_task(self.evaluator.run()),
                asyncio.create_task(self.sender.run()),
            ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.sender.close()
