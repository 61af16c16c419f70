"""The queue and its background worker: what makes logging cost an enqueue and never fail.

The caller's thread only appends an event to an in-memory queue (bounded by `max_queue`; a
full queue drops the newest event, counts it and logs a warning, and never blocks). One
daemon thread per logger takes events in order, groups consecutive creates into batches of up
to `batch_size` (waiting at most `flush_interval` for a batch to fill), and sends each group
with `Sender`. Order is kept: a follow-up (update, step) is sent only after everything queued
before it, so a PATCH never overtakes its action's start.

Failures are retried with full-jitter exponential backoff (a random wait between 0 and
min(30 s, 0.5 s * 2^attempt)), and never sooner than a `Retry-After` the service sent. While
a group waits, later events keep queueing behind it (or go to the spool). `flush()` wakes
the worker and restarts the backoff, so a flush after an outage sends at once.

A thread, not an asyncio task, even for `AsyncActionLogger`: the worker then outlives any
event loop, runs at interpreter exit, and is the same code for both loggers.

Fork: `os.register_at_fork` holds every logger's lock across the fork, so the child never
inherits a lock held by a thread that does not exist there. The child starts empty: its
parent's queued events stay the parent's to send (sending them twice would double any
follow-ups), it gets a new worker thread, a new HTTP connection pool (sockets are never shared
with the parent) and a new spool owner. Children started by `multiprocessing` also close the
logger at their exit, as `atexit` does for ordinary processes.
"""

import atexit
import logging
import multiprocessing.util
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

from actionlog_client._events import ACTION, Event, merge_step, merge_update
from actionlog_client._sender import Result, Sender
from actionlog_client._spool import Spool, destination
from actionlog_client._version import __version__
from actionlog_client.errors import EventsDropped, QueueFull

log = logging.getLogger("actionlog_client")

BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
ADOPT_EVERY = 60.0
WARN_EVERY = 10.0

OnError = Callable[[Exception, list[dict[str, Any]]], None]

_pipelines: "weakref.WeakSet[Pipeline]" = weakref.WeakSet()
_orphans: list[Any] = []  # a forked child's inherited HTTP pools: never used, never closed


class Pipeline:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        batch_size: int,
        flush_interval: float,
        max_queue: int,
        timeout: float,
        on_error: OnError | None,
        spool_path: str | os.PathLike[str] | None,
        max_spool: int,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if batch_size < 1 or batch_size > 1000:
            raise ValueError("batch_size must be between 1 and 1000 (the service's batch limit)")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if flush_interval < 0 or timeout <= 0:
            raise ValueError("flush_interval must be >= 0 and timeout > 0")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.timeout = timeout
        self.on_error = on_error
        self.max_spool = max_spool
        self.transport = transport
        self.spool = Spool(spool_path, destination(self.base_url, api_key)) if spool_path else None
        self._reset()
        if self.spool is not None:
            self._open_spool()
        _pipelines.add(self)
        multiprocessing.util.register_after_fork(self, Pipeline._in_multiprocessing_child)

    def _open_spool(self) -> None:
        """Adopt what earlier processes left in the spool and start sending it at once."""
        assert self.spool is not None
        try:
            adopted = self.spool.adopt()
            self._in_spool = self.spool.count()
            self._last_adopt = time.monotonic()
        except Exception as exc:
            log.warning("actionlog: the spool %s cannot be used: %r", self.spool.path, exc)
            self._report(exc, [])
            self.spool = None
            return
        if adopted:
            log.info("actionlog: sending %d event(s) left in the spool", adopted)
        if self._in_spool:
            with self._lock:
                self._start_locked()

    def _reset(self) -> None:
        """The state of a new pipeline (also a forked child's)."""
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the worker waits on it
        self._idle = threading.Condition(self._lock)  # flush() waits on it
        self._intake: deque[Event] = deque()
        self._starts: dict[str, Event] = {}  # queued creates by id, still open to merging
        self._head: deque[list[Event]] = deque()  # groups taken for sending, in order
        self._head_count = 0  # events in those groups
        self._first_at: float | None = None
        self._flushing = 0
        self._busy = False
        self._stop = False
        self._closed = False
        self._released = False
        self._thread: threading.Thread | None = None
        self._retry_at = 0.0
        self._retry_hard = False
        self._attempt = 0
        self._in_spool = 0
        self._last_adopt = 0.0
        self._reports: deque[tuple[Exception, list[Event]]] = deque()
        self._dropped_unwarned = 0
        self._last_warning = 0.0
        self._sender: Sender | None = None
        self.counters = {
            "sent": 0,
            "retried": 0,
            "dropped": 0,
            "rejected": 0,
            "spooled": 0,
            "failed_requests": 0,
        }

    # The caller's side

    def enqueue(self, event: Event, strict: bool = False) -> bool:
        with self._lock:
            if self._closed:
                self._drop_locked([event], EventsDropped("the logger is closed"))
                return False
            held = len(self._intake) + (0 if self.spool else self._head_size())
            if held >= self.max_queue:
                error = QueueFull(
                    f"the queue holds {self.max_queue} events; the newest was dropped"
                )
                self._drop_locked([event], error)
                if strict:
                    raise error
                return False
            self._intake.append(event)
            if event.kind == ACTION and event.target is not None:
                self._starts[event.target] = event
            if self._first_at is None:
                self._first_at = time.monotonic()
            if len(self._intake) == self.batch_size:
                self._wake.notify()  # a full batch: the worker need not wait for the interval
            if self._thread is None:
                self._start_locked()
        return True

    def follow_up(self, event: Event, strict: bool = False) -> bool:
        """Queue an update or a step, merged into its start when that is still queued."""
        with self._lock:
            start = self._starts.get(event.target or "")
            if start is not None and not self._closed:
                if event.kind == "update":
                    merge_update(start.body, event.body)
                else:
                    merge_step(start.body, event.body)
                return True
        return self.enqueue(event, strict)

    def flush(self, timeout: float) -> bool:
        """Wait until every event is acknowledged (or refused), at most `timeout` seconds."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            if self._is_idle() or threading.current_thread() is self._thread:
                return self._is_idle()  # (on_error calling flush must not wait for itself)
            if self._thread is None and not self._stop:
                self._start_locked()
            self._flushing += 1
            self._attempt = 0
            if not self._retry_hard:
                self._retry_at = 0.0
            self._wake.notify()
            try:
                while not self._is_idle():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or (self._stop and not self._thread_alive()):
                        return False
                    self._idle.wait(min(remaining, 0.5))
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout: float) -> bool:
        """Flush for at most `timeout`, stop the worker; what is left is spooled or dropped."""
        started = time.monotonic()
        with self._lock:
            if self._closed:
                return self._is_idle()
        delivered = self.flush(timeout)
        with self._lock:
            self._closed = True
            self._stop = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, min(1.0, timeout - (time.monotonic() - started))))
        with self._lock:
            left = list(self._intake)
            self._intake.clear()
            self._starts.clear()
            if not self.spool:
                left = [e for group in self._head for e in group] + left
                self._head.clear()
                self._head_count = 0
            self._released = True
        if self.spool is not None:
            try:
                self._spool_push(left)
                self.spool.release()
            except Exception as exc:  # a spool that cannot be written: the events are lost
                self._report(exc, left)
                with self._lock:
                    self.counters["dropped"] += len(left)
        elif left:
            with self._lock:
                self._drop_locked(left, EventsDropped(f"{len(left)} events unsent at close"))
        self._run_reports()
        return delivered

    def idle(self) -> bool:
        with self._lock:
            return self._is_idle()

    def stats(self) -> dict[str, int]:
        with self._lock:
            queued = len(self._intake) + (self._in_spool if self.spool else self._head_size())
            return {"queued": queued, **self.counters}

    # Bookkeeping (under the lock)

    def _head_size(self) -> int:
        return self._head_count

    def _is_idle(self) -> bool:
        return not (self._intake or self._head or self._in_spool or self._busy)

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _start_locked(self) -> None:
        self._thread = threading.Thread(target=self._run, name="actionlog-client", daemon=True)
        self._thread.start()

    def _drop_locked(self, events: list[Event], error: Exception) -> None:
        self.counters["dropped"] += len(events)
        self._reports.append((error, events))
        self._dropped_unwarned += len(events)
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            log.warning("actionlog: dropped %d event(s): %s", self._dropped_unwarned, error)
            self._dropped_unwarned = 0
            self._last_warning = now
        self._wake.notify()

    # The worker

    def _run(self) -> None:
        while True:
            try:
                if not self._step():
                    return
            except Exception:  # a bug here must not end delivery for good
                log.exception("actionlog: unexpected error in the delivery thread")
                with self._lock:
                    self._busy = False
                    self._retry_at = time.monotonic() + 1.0
            finally:
                self._run_reports()

    def _step(self) -> bool:
        """One pass: take what is due, then send one group when its time has come."""
        with self._lock:
            while True:
                if self._stop:
                    self._idle.notify_all()
                    return False
                now = time.monotonic()
                due = self._intake_due(now)
                sendable = bool(self._head) or (self.spool is not None and self._in_spool > 0)
                ready = sendable and now >= self._retry_at
                if due or ready or self._needs_upkeep(now):
                    break
                if self._reports:
                    return True  # hand drops reported meanwhile to on_error now
                if self._is_idle():
                    self._idle.notify_all()
                self._wake.wait(self._wait_time(now, sendable))
            taken: list[Event] = []
            if due and (self.spool is not None or not self._head):
                taken = self._take_locked()
                if self.spool is None:  # into the head in the same step: always counted
                    self._head.extend(self._groups(taken))
                    self._head_count += len(taken)
            self._busy = True
        try:
            if self.spool is not None:
                self._spool_upkeep(taken)
            self._send_next()
        finally:
            with self._lock:
                self._busy = False
                if self._is_idle():
                    self._idle.notify_all()
        return True

    def _intake_due(self, now: float) -> bool:
        if not self._intake:
            return False
        if self.spool is None and self._head:
            return False  # the next batch forms behind the group being sent
        return (
            len(self._intake) >= self.batch_size
            or self._flushing > 0
            or self._first_at is None
            or now >= self._first_at + self.flush_interval
        )

    def _needs_upkeep(self, now: float) -> bool:
        return self.spool is not None and now - self._last_adopt >= ADOPT_EVERY

    def _wait_time(self, now: float, sendable: bool) -> float:
        waits = [ADOPT_EVERY if self.spool is not None else 3600.0]
        if self._intake and self._first_at is not None:
            waits.append(self._first_at + self.flush_interval - now)
        if sendable:
            waits.append(self._retry_at - now)
        return max(0.001, min(waits))

    def _take_locked(self) -> list[Event]:
        """Take the intake (all of it with a spool, else one group's worth)."""
        taken: list[Event] = []
        limit = len(self._intake) if self.spool is not None else self.batch_size
        while self._intake and len(taken) < limit:
            event = self._intake[0]
            if self.spool is None and taken and (event.kind != ACTION or taken[0].kind != ACTION):
                break
            self._intake.popleft()
            if event.kind == ACTION and event.target is not None:
                self._starts.pop(event.target, None)
            taken.append(event)
        self._first_at = time.monotonic() if self._intake else None
        return taken

    def _groups(self, events: list[Event]) -> list[list[Event]]:
        """Consecutive creates in batches of `batch_size`; every follow-up alone."""
        groups: list[list[Event]] = []
        for event in events:
            if (
                event.kind == ACTION
                and groups
                and groups[-1][0].kind == ACTION
                and len(groups[-1]) < self.batch_size
            ):
                groups[-1].append(event)
            else:
                groups.append([event])
        return groups

    # The spool side of the worker

    def _spool_upkeep(self, taken: list[Event]) -> None:
        assert self.spool is not None
        if self._released:
            return
        try:
            now = time.monotonic()
            if now - self._last_adopt >= ADOPT_EVERY:
                self._last_adopt = now
                adopted = self.spool.adopt()
                if adopted:
                    log.info("actionlog: sending %d event(s) left in the spool", adopted)
                with self._lock:
                    self._in_spool = self.spool.count()
            self.spool.heartbeat()
            self._spool_push(taken)
            taken = []
            if not self._head:
                self._extend_head(self.spool.head(self.batch_size))
        except Exception as exc:  # the spool failed (disk full, …): keep the events in memory
            log.warning("actionlog: the spool failed (%r); events kept in memory", exc)
            self._report(exc, taken)
            self._extend_head(taken)

    def _extend_head(self, events: list[Event]) -> None:
        """Add groups to send; the head changes under the lock (enqueue reads its size)."""
        if events:
            groups = self._groups(events)
            with self._lock:
                self._head.extend(groups)
                self._head_count += len(events)

    def _spool_push(self, events: list[Event]) -> None:
        assert self.spool is not None
        if not events:
            return
        room = self.max_spool - self._in_spool
        if room < len(events):
            dropped = events[max(0, room) :]
            events = events[: max(0, room)]
            with self._lock:
                self._drop_locked(dropped, QueueFull(f"the spool holds {self.max_spool} events"))
        self.spool.push(events)
        with self._lock:
            self._in_spool += len(events)
            self.counters["spooled"] += len(events)

    # Sending

    def _client(self) -> Sender:
        if self._sender is None:
            headers = {"X-API-Key": self.api_key, "User-Agent": f"actionlog-client/{__version__}"}
            client = httpx.Client(
                base_url=self.base_url,
                headers=headers,
                timeout=self.timeout,
                transport=self.transport,
            )
            self._sender = Sender(client)
        return self._sender

    def _send_next(self) -> None:
        if not self._head:
            return
        with self._lock:
            if time.monotonic() < self._retry_at and not self._stop:
                return
        group = self._head[0]
        now = time.time()
        for event in group:
            event.attempts += 1
            if event.first_sent is None:
                event.first_sent = now
        result = self._client().send(group)
        if result.retry is not None:
            self._retry_later(group, result)
            return
        with self._lock:
            self._head.popleft()
            for part in reversed(result.again):
                self._head.appendleft(part)
            self._head_count -= len(group) - sum(len(part) for part in result.again)
            self._attempt = 0
            self._retry_at = 0.0
            self._retry_hard = False
        self._settle(result)

    def _retry_later(self, group: list[Event], result: Result) -> None:
        assert result.retry is not None
        if result.maybe_sent:
            for event in group:
                event.maybe_sent = True
            if self.spool is not None and not self._released:
                try:
                    self.spool.mark_maybe_sent(group)
                except Exception as exc:
                    self._report(exc, [])
        with self._lock:
            cap = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(self._attempt, 20))
            delay = random.uniform(0, cap)
            self._attempt += 1
            self._retry_hard = result.retry_after is not None
            if result.retry_after is not None:
                delay = max(delay, result.retry_after)
            self._retry_at = time.monotonic() + delay
            self.counters["retried"] += len(group)
            self.counters["failed_requests"] += 1
        log.debug("actionlog: %s; retrying %d event(s) in %.2fs", result.retry, len(group), delay)
        self._report(result.retry, group)

    def _settle(self, result: Result) -> None:
        done = result.sent + [event for event, _ in result.rejected]
        if self.spool is not None and not self._released:
            spooled = [e for e in done if e.seq is not None]
            try:
                self.spool.remove(spooled)
            except Exception as exc:
                self._report(exc, [])
            with self._lock:
                self._in_spool = max(0, self._in_spool - len(spooled))
        with self._lock:
            self.counters["sent"] += len(result.sent)
            self.counters["rejected"] += len(result.rejected)
        for event, error in result.rejected:
            log.warning("actionlog: %s", error)
            self._report(error, [event])

    # Reporting to on_error, outside every lock

    def _report(self, error: Exception, events: list[Event]) -> None:
        with self._lock:
            self._reports.append((error, events))

    def _run_reports(self) -> None:
        while True:
            with self._lock:
                if not self._reports:
                    return
                error, events = self._reports.popleft()
            if self.on_error is None:
                continue
            try:
                self.on_error(error, [e.body for e in events])
            except Exception:
                log.exception("actionlog: on_error raised")

    # Fork and exit

    def _before_fork(self) -> None:
        self._lock.acquire()

    def _after_fork_in_parent(self) -> None:
        self._lock.release()

    def _after_fork_in_child(self) -> None:
        if self._sender is not None:
            _orphans.append(self._sender.client)
        self._reset()
        if self.spool is not None:
            self.spool.forget_after_fork()

    def _in_multiprocessing_child(self) -> None:
        multiprocessing.util.Finalize(None, _close_ref, args=(weakref.ref(self),), exitpriority=100)


def _close_ref(ref: "weakref.ReferenceType[Pipeline]") -> None:
    pipeline = ref()
    if pipeline is not None:
        pipeline.close(pipeline.timeout)


_forking: list[Pipeline] = []  # the pipelines whose locks the forking thread holds


def _before_fork() -> None:
    _forking[:] = list(_pipelines)
    for pipeline in _forking:
        pipeline._before_fork()


def _after_fork_in_parent() -> None:
    for pipeline in _forking:
        pipeline._after_fork_in_parent()
    _forking.clear()


def _after_fork_in_child() -> None:
    for pipeline in _forking:
        pipeline._after_fork_in_child()
    _forking.clear()


def _close_all() -> None:
    """At exit: deliver what is queued, waiting at most `timeout` (1 s when a spool keeps
    what is left for the next start, so a service outage does not slow every exit)."""
    for pipeline in list(_pipelines):
        try:
            wait = min(pipeline.timeout, 1.0) if pipeline.spool is not None else pipeline.timeout
            pipeline.close(wait)
        except Exception:
            log.exception("actionlog: closing at exit failed")


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
atexit.register(_close_all)
