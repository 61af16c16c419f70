"""`ActionLogger`: the synchronous client.

Recording never waits for the service and never raises because of it (with the default
`strict=False`): events are queued and sent in the background (see `_pipeline`). Reads go to
the service directly and, failing, return an empty answer and report to `on_error`.
"""

import asyncio
import functools
import inspect
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import Token
from datetime import datetime
from typing import Any, TypeVar, cast, overload

import httpx

from actionlog_client import _context
from actionlog_client import _queries as q
from actionlog_client._core import LoggerCore, duration_fields
from actionlog_client._pipeline import OnError
from actionlog_client.audit import Audit
from actionlog_client.errors import ReadFailed

log = logging.getLogger("actionlog_client")

F = TypeVar("F", bound=Callable[..., Any])


def exception_fields(exc: BaseException) -> dict[str, Any]:
    """How a failure is recorded: cancelled for interruptions, failure with type and message."""
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit | GeneratorExit):
        return {"status": "cancelled", "error_type": type(exc).__name__}
    return {
        "status": "failure",
        "error_type": type(exc).__name__,
        "error_message": str(exc) or repr(exc),
    }


class Action:
    """A running action, from `with logger.action(...) as a:`."""

    def __init__(
        self,
        logger: "ActionLogger",
        action_type: str,
        fields: dict[str, Any],
        *,
        nest: bool = True,
    ) -> None:
        self.logger = logger
        self.action_type = action_type
        self.fields = fields
        self.nest = nest  # link to the enclosing action, and be the parent of nested ones
        self.id = ""
        self.finished = False
        self._started = 0.0
        self._token: Token[_context.Current | None] | None = None

    def start(self) -> "Action":
        self.fields.setdefault("status", "in_progress")
        enclosing = _context.current.get() if self.nest else None
        if enclosing is not None:
            if self.fields.get("parent_id") is None:
                self.fields["parent_id"] = enclosing.action_id
            if self.fields.get("correlation_id") is None:
                self.fields["correlation_id"] = enclosing.correlation_id
        self.id = self.logger._record(self.action_type, self.fields)
        if self.nest:
            self._token = _context.enter(self.id, self.fields.get("correlation_id"))
        self._started = time.perf_counter()
        return self

    def step(
        self,
        step: str,
        status: str = "done",
        details: dict[str, Any] | None = None,
        *,
        timestamp: datetime | None = None,
    ) -> bool:
        """Append an execution step (the attempt logger's `log_step`)."""
        return self.logger._step(self.id, step, status, details, timestamp)

    def update(self, **fields: Any) -> bool:
        """Change the running action: status, metadata (merged), response_data, …"""
        return self.logger._update(self.id, fields)

    def complete(self, **fields: Any) -> bool:
        return self._finish({"status": "success", **fields})

    def fail(self, error_message: str | None = None, **fields: Any) -> bool:
        return self._finish({"status": "failure", "error_message": error_message, **fields})

    def _finish(self, fields: dict[str, Any]) -> bool:
        if self.finished:
            log.warning("actionlog: action %s is already finished", self.id)
            return False
        self.finished = True
        fields.setdefault("execution_time_ms", duration_fields(self.elapsed())["execution_time_ms"])
        return self.logger._update(self.id, fields)

    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    def end(self, exc: BaseException | None) -> None:
        if self._token is not None:
            _context.leave(self._token)
            self._token = None
        if self.finished:
            return
        if exc is None:
            self.complete()
        else:
            self._finish(exception_fields(exc))


class ActionLogger(LoggerCore):
    """A fail-safe client of the Action Log Service.

    `batch_size` events at most per request (1..1000); a batch leaves when full or
    `flush_interval` seconds after its first event. `max_queue` events at most wait in memory
    (the newest is dropped beyond). `timeout` bounds each HTTP request and is the default of
    `flush`/`close`. `strict=True` raises instead of reporting (a full queue, a failed read, a
    flush that timed out). `on_error(exc, events)` receives every failure with the event
    bodies concerned. `spool_path` keeps unacknowledged events in a SQLite file, sent after a
    restart.
    """

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
    ) -> None:
        super().__init__(
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
        self._transport = transport
        self._reader: httpx.Client | None = None
        self._reader_pid = 0
        self._reader_lock = threading.Lock()
        self.audit = Audit(self._audit)

    # The job logger's API

    def log_action(
        self,
        action_type: str,
        status: str = "success",
        *,
        action_name: str | None = None,
        user_id: str | None = None,
        source: str | None = None,
        result_message: str | None = None,
        error_message: str | None = None,
        action_details: dict[str, Any] | None = None,
        job_id: str | None = None,
        job_execution_id: str | None = None,
        duration_seconds: float | None = None,
        ip_address: str | None = None,
        user_agent: str | None = None,
        session_id: str | None = None,
        **fields: Any,
    ) -> str:
        """Record one finished (or any-status) action; returns its id."""
        legacy = dict(
            result_message=result_message,
            action_details=action_details,
            job_id=job_id,
            job_execution_id=job_execution_id,
            duration_seconds=duration_seconds,
        )
        common = dict(
            action_name=action_name,
            user_id=user_id,
            source=source,
            error_message=error_message,
            ip_address=ip_address,
            user_agent=user_agent,
            session_id=session_id,
        )
        return self._job_log(action_type, status, legacy, {**common, **fields})

    def start_action(
        self,
        action_type: str,
        action_name: str | None = None,
        *,
        user_id: str | None = None,
        source: str | None = None,
        action_details: dict[str, Any] | None = None,
        job_id: str | None = None,
        job_execution_id: str | None = None,
        ip_address: str | None = None,
        user_agent: str | None = None,
        session_id: str | None = None,
        status: str = "in_progress",
        **fields: Any,
    ) -> str:
        """Begin tracking an action; returns its id at once (the start is queued)."""
        legacy = dict(
            action_details=action_details, job_id=job_id, job_execution_id=job_execution_id
        )
        common = dict(
            action_name=action_name,
            user_id=user_id,
            source=source,
            ip_address=ip_address,
            user_agent=user_agent,
            session_id=session_id,
        )
        return self._job_log(action_type, status, legacy, {**common, **fields})

    def update_action(
        self,
        action_id: str,
        status: str | None = None,
        *,
        result_message: str | None = None,
        action_details: dict[str, Any] | None = None,
        error_message: str | None = None,
        duration_seconds: float | None = None,
        **fields: Any,
    ) -> bool:
        """Change a running action (merged into its start while that is still queued)."""
        legacy = dict(
            result_message=result_message,
            action_details=action_details,
            duration_seconds=duration_seconds,
        )
        return self._job_update(
            action_id, legacy, {"status": status, "error_message": error_message, **fields}
        )

    def complete_action(
        self,
        action_id: str,
        result_message: str | None = None,
        action_details: dict[str, Any] | None = None,
        *,
        duration_seconds: float | None = None,
        **fields: Any,
    ) -> bool:
        """Mark an action completed; its duration is computed from its start."""
        fields.setdefault("status", "success")
        return self.update_action(
            action_id,
            result_message=result_message,
            action_details=action_details,
            duration_seconds=duration_seconds,
            **fields,
        )

    def fail_action(
        self,
        action_id: str,
        error_message: str | None = None,
        action_details: dict[str, Any] | None = None,
        *,
        duration_seconds: float | None = None,
        **fields: Any,
    ) -> bool:
        """Mark an action failed with its error."""
        fields.setdefault("status", "failure")
        return self.update_action(
            action_id,
            error_message=error_message,
            action_details=action_details,
            duration_seconds=duration_seconds,
            **fields,
        )

    def get_recent_actions(
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
        """Newest actions first, in the job logger's shape (with the service's fields too).

        `details=True` reads each full record (payloads, metadata, steps); `False` is one
        request for the summaries only.
        """
        query = q.job_logger_filters(
            action_type=action_type,
            status=status,
            source=source,
            user_id=user_id,
            job_execution_id=job_execution_id,
            limit=limit,
            extra=filters,
        )
        rows = self._get(q.ACTIONS, query, default=[])
        if details:
            full = [self._get(f"{q.ACTIONS}/{row['id']}", {}, default=None) for row in rows]
            rows = [f if f is not None else r for f, r in zip(full, rows, strict=True)]
        return [q.job_logger_record(row) for row in rows]

    def get_action_summary(self, days: float = 7, **filters: Any) -> dict[str, Any]:
        """Statistics of the last `days` days (the job logger's summary names beside ours)."""
        query = q.params({"since": q.since_days(days), **filters})
        return q.job_logger_summary(self._get(q.STATS, query, default=q.empty_stats()), days)

    # The service's own names

    def log(self, action_type: str, *, id: str | None = None, **fields: Any) -> str:
        """Record an action with the service's field names; returns its id."""
        return self._record(action_type, fields, id)

    def get_action(self, action_id: str) -> dict[str, Any] | None:
        """One full record, or None when it does not exist (or the read failed)."""
        return cast(
            dict[str, Any] | None,
            self._get(f"{q.ACTIONS}/{action_id}", {}, default=None, missing=None),
        )

    def list_actions(self, limit: int = 100, **filters: Any) -> list[dict[str, Any]]:
        """Summaries, newest first, filtered as `GET /api/v1/logs/actions`."""
        return cast(
            list[dict[str, Any]], self._get(q.ACTIONS, q.params({"limit": limit, **filters}), [])
        )

    def iter_actions(self, order: str = "desc", **filters: Any) -> Iterator[dict[str, Any]]:
        """Every matching full record, streamed from the NDJSON export (no limit).

        A failure ends the iteration (reported to `on_error`; raised with `strict=True`)."""
        if self._pipeline is None:
            return
        if not self._pipeline.idle():
            self._flush(self.timeout)
        query = {**q.params({**filters, "order": order}), "format": "ndjson"}
        try:
            with self._client().stream("GET", f"{q.ACTIONS}/export", params=query) as response:
                if response.status_code != 200:
                    response.read()
                    error = ReadFailed(
                        f"GET {q.ACTIONS}/export answered {response.status_code}: "
                        f"{response.text[:300]}",
                        status_code=response.status_code,
                    )
                    self._read_failed(error, None)
                    return
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as exc:
            self._read_failed(ReadFailed(f"GET {q.ACTIONS}/export failed: {exc!r}"), None)

    def get_stats(self, **filters: Any) -> dict[str, Any]:
        """`GET /api/v1/logs/stats` with these filters."""
        return cast(dict[str, Any], self._get(q.STATS, q.params(filters), q.empty_stats()))

    # Pythonic extras

    @contextmanager
    def action(self, action_type: str, **fields: Any) -> Iterator[Action]:
        """`with logger.action("s3_export") as a: a.step(...)`: success on exit, failure
        (with the exception's type and message) on error, duration measured."""
        handle = Action(self, action_type, dict(fields)).start()
        try:
            yield handle
        except BaseException as exc:
            handle.end(exc)
            raise
        handle.end(None)

    @overload
    def track(self, action_type: F) -> F: ...
    @overload
    def track(self, action_type: str | None = None, **fields: Any) -> Callable[[F], F]: ...

    def track(self, action_type: Any = None, **fields: Any) -> Any:
        """Decorate a function (sync or async) so that each call is recorded as an action."""
        if callable(action_type):
            return self.track()(action_type)

        def decorate(func: F) -> F:
            kind = action_type or func.__name__
            name = fields.get("action_name", func.__qualname__)
            extra = {k: v for k, v in fields.items() if k != "action_name"}
            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def run_async(*args: Any, **kwargs: Any) -> Any:
                    with self.action(kind, action_name=name, **extra):
                        return await func(*args, **kwargs)

                return cast(F, run_async)

            @functools.wraps(func)
            def run(*args: Any, **kwargs: Any) -> Any:
                with self.action(kind, action_name=name, **extra):
                    return func(*args, **kwargs)

            return cast(F, run)

        return decorate

    # Delivery

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued is acknowledged, at most `timeout` seconds (default:
        the logger's `timeout`); True when nothing is left."""
        done = self._flush(timeout)
        if not done and self.strict:
            from actionlog_client.errors import FlushTimeout

            raise FlushTimeout(f"events still undelivered after {timeout}s: {self.stats()}")
        return done

    def close(self, timeout: float | None = None) -> bool:
        """Flush for at most `timeout`, then stop; unsent events are spooled (or dropped)."""
        done = self._close(timeout)
        with self._reader_lock:
            if self._reader is not None and self._reader_pid == os.getpid():
                self._reader.close()
            self._reader = None
        return done

    def __enter__(self) -> "ActionLogger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Reading

    def _client(self) -> httpx.Client:
        with self._reader_lock:
            if self._reader is None or self._reader_pid != os.getpid():
                self._reader = httpx.Client(
                    base_url=self.base_url,
                    headers=self._headers(),
                    timeout=self.timeout,
                    transport=self._transport,
                )
                self._reader_pid = os.getpid()
            return self._reader

    def _get(self, path: str, params: dict[str, Any], default: Any, missing: Any = ...) -> Any:
        if self._pipeline is None:
            return default
        if not self._pipeline.idle():
            self._flush(self.timeout)  # read your own writes
        try:
            response = self._client().get(path, params=params)
        except httpx.HTTPError as exc:
            return self._read_failed(ReadFailed(f"GET {path} failed: {exc!r}"), default)
        if response.status_code == 404 and missing is not ...:
            return missing
        if response.status_code != 200:
            error = ReadFailed(
                f"GET {path} answered {response.status_code}: {response.text[:300]}",
                status_code=response.status_code,
            )
            return self._read_failed(error, default)
        return response.json()

    def _post(self, path: str) -> Any:
        """A synchronous POST without a body (an operator's act, not a queued event)."""
        if self._pipeline is None:
            return None
        try:
            response = self._client().post(path)
        except httpx.HTTPError as exc:
            return self._read_failed(ReadFailed(f"POST {path} failed: {exc!r}"), None)
        if response.status_code not in (200, 201):
            error = ReadFailed(
                f"POST {path} answered {response.status_code}: {response.text[:300]}",
                status_code=response.status_code,
            )
            return self._read_failed(error, None)
        return response.json()

    def _read_failed(self, error: ReadFailed, default: Any) -> Any:
        if self.strict:
            raise error
        log.warning("actionlog: %s", error)
        if self.on_error is not None:
            try:
                self.on_error(error, [])
            except Exception:
                log.exception("actionlog: on_error raised")
        return default
