"""`AsyncActionLogger`: the same methods as `ActionLogger`, as coroutines.

Recording is the same non-blocking enqueue (no await is needed to record, but the methods
are coroutines so that code written for an async logger reads uniformly). Delivery runs on
the same background thread as the sync logger, so it does not depend on any event loop
staying alive; `flush` and `close` wait for it in a worker thread, never blocking the loop.
Reads use `httpx.AsyncClient`, one per event loop.
"""

import asyncio
import functools
import inspect
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar, cast, overload

import httpx

from actionlog_client import _queries as q
from actionlog_client._pipeline import OnError
from actionlog_client.audit import AsyncAudit
from actionlog_client.errors import FlushTimeout, ReadFailed
from actionlog_client.logger import Action, ActionLogger

F = TypeVar("F", bound=Callable[..., Any])


class AsyncAction:
    """A running action, from `async with logger.action(...) as a:`."""

    def __init__(self, action: Action) -> None:
        self._action = action
        self.id = action.id

    async def step(
        self,
        step: str,
        status: str = "done",
        details: dict[str, Any] | None = None,
        *,
        timestamp: datetime | None = None,
    ) -> bool:
        return self._action.step(step, status, details, timestamp=timestamp)

    async def update(self, **fields: Any) -> bool:
        return self._action.update(**fields)

    async def complete(self, **fields: Any) -> bool:
        return self._action.complete(**fields)

    async def fail(self, error_message: str | None = None, **fields: Any) -> bool:
        return self._action.fail(error_message, **fields)


class AsyncActionLogger:
    """See `ActionLogger` for the parameters; every method is a coroutine."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        batch_size: int = 100,
        flush_interval: float = 0.5,
        max_queue: int = 10_000,
        timeout: float = 5.0,
        strict: bool = False,
        on_error: OnError | None = None,
        spool_path: str | os.PathLike[str] | None = None,
        max_spool: int = 1_000_000,
        transport: httpx.BaseTransport | None = None,
        read_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.sync = ActionLogger(
            base_url,
            api_key,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue=max_queue,
            timeout=timeout,
            strict=strict,
            on_error=on_error,
            spool_path=spool_path,
            max_spool=max_spool,
            transport=transport,
        )
        self.timeout = timeout
        self.strict = strict
        self._read_transport = read_transport
        self._readers: dict[int, tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]] = {}
        self.audit = AsyncAudit(self.sync._audit)

    # Recording (the job logger's names; see ActionLogger for each parameter)

    async def log_action(self, action_type: str, status: str = "success", **kw: Any) -> str:
        return self.sync.log_action(action_type, status, **kw)

    async def start_action(
        self, action_type: str, action_name: str | None = None, **kw: Any
    ) -> str:
        return self.sync.start_action(action_type, action_name, **kw)

    async def update_action(self, action_id: str, status: str | None = None, **kw: Any) -> bool:
        return self.sync.update_action(action_id, status, **kw)

    async def complete_action(
        self, action_id: str, result_message: str | None = None, **kw: Any
    ) -> bool:
        return self.sync.complete_action(action_id, result_message, **kw)

    async def fail_action(
        self, action_id: str, error_message: str | None = None, **kw: Any
    ) -> bool:
        return self.sync.fail_action(action_id, error_message, **kw)

    async def log(self, action_type: str, **fields: Any) -> str:
        return self.sync.log(action_type, **fields)

    def stats(self) -> dict[str, int]:
        return self.sync.stats()

    # Reading

    async def get_recent_actions(
        self,
        action_type: str | None = None,
        status: str | None = None,
        source: str | None = None,
        user_id: str | None = None,
        limit: int = 50,
        *,
        job_execution_id: str | None = None,
        details: bool = True,
        **filters: Any,
    ) -> list[dict[str, Any]]:
        query = q.job_logger_filters(
            action_type=action_type,
            status=status,
            source=source,
            user_id=user_id,
            job_execution_id=job_execution_id,
            limit=limit,
            extra=filters,
        )
        rows = await self._get(q.ACTIONS, query, default=[])
        if details and rows:
            full = await asyncio.gather(
                *(self._get(f"{q.ACTIONS}/{row['id']}", {}, default=None) for row in rows)
            )
            rows = [f if f is not None else r for f, r in zip(full, rows, strict=True)]
        return [q.job_logger_record(row) for row in rows]

    async def get_action_summary(self, days: float = 7, **filters: Any) -> dict[str, Any]:
        query = q.params({"since": q.since_days(days), **filters})
        return q.job_logger_summary(await self._get(q.STATS, query, default=q.empty_stats()), days)

    async def get_action(self, action_id: str) -> dict[str, Any] | None:
        found = await self._get(f"{q.ACTIONS}/{action_id}", {}, default=None, missing=None)
        return cast(dict[str, Any] | None, found)

    async def list_actions(self, limit: int = 100, **filters: Any) -> list[dict[str, Any]]:
        rows = await self._get(q.ACTIONS, q.params({"limit": limit, **filters}), [])
        return cast(list[dict[str, Any]], rows)

    async def get_stats(self, **filters: Any) -> dict[str, Any]:
        return cast(dict[str, Any], await self._get(q.STATS, q.params(filters), q.empty_stats()))

    # Extras

    @asynccontextmanager
    async def action(self, action_type: str, **fields: Any) -> AsyncIterator[AsyncAction]:
        handle = Action(self.sync, action_type, dict(fields)).start()
        try:
            yield AsyncAction(handle)
        except BaseException as exc:
            handle.end(exc)
            raise
        handle.end(None)

    @overload
    def track(self, action_type: F) -> F: ...
    @overload
    def track(self, action_type: str | None = None, **fields: Any) -> Callable[[F], F]: ...

    def track(self, action_type: Any = None, **fields: Any) -> Any:
        if callable(action_type):
            return self.track()(action_type)

        def decorate(func: F) -> F:
            if not inspect.iscoroutinefunction(func):
                return cast(F, self.sync.track(action_type, **fields)(func))
            kind = action_type or func.__name__
            name = fields.get("action_name", func.__qualname__)
            extra = {k: v for k, v in fields.items() if k != "action_name"}

            @functools.wraps(func)
            async def run(*args: Any, **kwargs: Any) -> Any:
                async with self.action(kind, action_name=name, **extra):
                    return await func(*args, **kwargs)

            return cast(F, run)

        return decorate

    # Delivery

    async def flush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 (the API)
        done = await asyncio.to_thread(self.sync._flush, timeout)
        if not done and self.strict:
            raise FlushTimeout(f"events still undelivered after {timeout}s: {self.stats()}")
        return done

    async def close(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        done = await asyncio.to_thread(self.sync.close, timeout)
        for loop, client in list(self._readers.values()):
            if loop is asyncio.get_running_loop():
                await client.aclose()
        self._readers.clear()
        return done

    async def __aenter__(self) -> "AsyncActionLogger":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        entry = self._readers.get(id(loop))
        if entry is None or entry[0] is not loop:
            # clients of loops that are gone cannot be closed any more; let them go
            self._readers = {k: v for k, v in self._readers.items() if not v[0].is_closed()}
            client = httpx.AsyncClient(
                base_url=self.sync.base_url,
                headers=self.sync._headers(),
                timeout=self.timeout,
                transport=self._read_transport,
            )
            self._readers[id(loop)] = (loop, client)
            return client
        return entry[1]

    async def _get(
        self, path: str, params: dict[str, Any], default: Any, missing: Any = ...
    ) -> Any:
        if self.sync._pipeline is None:
            return default
        if not self.sync._pipeline.idle():
            await asyncio.to_thread(self.sync._flush, self.timeout)
        try:
            response = await self._client().get(path, params=params)
        except httpx.HTTPError as exc:
            return self.sync._read_failed(ReadFailed(f"GET {path} failed: {exc!r}"), default)
        if response.status_code == 404 and missing is not ...:
            return missing
        if response.status_code != 200:
            error = ReadFailed(
                f"GET {path} answered {response.status_code}: {response.text[:300]}",
                status_code=response.status_code,
            )
            return self.sync._read_failed(error, default)
        return response.json()
