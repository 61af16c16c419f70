"""What the sync and the async logger share: building events and handing them to the queue.

Nothing here waits for the network. Recording methods return as soon as the event is queued
(`start_action` returns the id it generated), so they cost the same whether the service is
fast, slow or down.
"""

import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from actionlog_client._events import (
    ACTION,
    AUDIT,
    STEP,
    UPDATE,
    Event,
    action_body,
    clean,
    job_logger_fields,
    seconds_to_ms,
    step_body,
    update_body,
)
from actionlog_client._ids import new_id
from actionlog_client._pipeline import OnError, Pipeline
from actionlog_client.errors import EventsDropped

log = logging.getLogger("actionlog_client")

# The service's own field names, accepted by every recording method beside the job logger's.
ACTION_FIELDS = frozenset(
    {
        "action_name",
        "provider_name",
        "service",
        "source",
        "user_id",
        "session_id",
        "correlation_id",
        "parent_id",
        "status",
        "request_payload",
        "response_data",
        "metadata",
        "steps",
        "error_message",
        "error_type",
        "execution_time_ms",
        "started_at",
        "completed_at",
        "ip_address",
        "user_agent",
    }
)


def _check(fields: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"{what} got unknown field(s): {', '.join(sorted(unknown))}")


def _merge_metadata(fields: dict[str, Any], mapped: dict[str, Any]) -> dict[str, Any]:
    """Job-logger fields over the service's, with both metadata objects kept."""
    out = {**fields, **{k: v for k, v in mapped.items() if k != "metadata"}}
    if "metadata" in mapped or fields.get("metadata") is not None:
        out["metadata"] = {**(fields.get("metadata") or {}), **mapped.get("metadata", {})}
    return out


class LoggerCore:
    """The queue side of a logger; see `ActionLogger` for the parameters."""

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
        self.base_url = (base_url or "").rstrip("/")
        self.api_key = api_key or ""
        self.timeout = timeout
        self.strict = strict
        self.on_error = on_error
        self._pipeline: Pipeline | None = None
        if base_url and api_key:
            self._pipeline = Pipeline(
                self.base_url,
                self.api_key,
                batch_size=batch_size,
                flush_interval=flush_interval,
                max_queue=max_queue,
                timeout=timeout,
                on_error=on_error,
                spool_path=spool_path,
                max_spool=max_spool,
                transport=transport,
            )
        elif strict:
            raise ValueError("base_url and api_key are required (ACTIONLOG_URL, ACTIONLOG_API_KEY)")
        else:
            log.warning("actionlog: no service URL or API key configured; events are dropped")
        self._disabled_drops = 0

    # Queueing

    def _queue(self, event: Event) -> bool:
        if self._pipeline is None:
            self._disabled_drops += 1
            if self.on_error is not None:
                try:
                    self.on_error(EventsDropped("no service configured"), [event.body])
                except Exception:
                    log.exception("actionlog: on_error raised")
            return False
        if event.kind in (UPDATE, STEP):
            return self._pipeline.follow_up(event, self.strict)
        return self._pipeline.enqueue(event, self.strict)

    def _record(
        self,
        action_type: str,
        fields: dict[str, Any],
        action_id: str | None = None,
    ) -> str:
        _check(fields, ACTION_FIELDS, "an action")
        action_id = str(action_id) if action_id else new_id()
        self._queue(Event(ACTION, action_body(action_id, action_type, fields), target=action_id))
        return action_id

    def _record_ready(self, body: dict[str, Any]) -> bool:
        """Queue a create body that is already complete (id, status, times): the
        middleware's fast path. Datetimes in it are rendered when the batch is encoded."""
        return self._queue(Event(ACTION, body, target=body["id"]))

    def _update(self, action_id: str, fields: dict[str, Any]) -> bool:
        body = update_body(fields)
        if not body:
            return True
        return self._queue(Event(UPDATE, body, target=str(action_id)))

    def _step(
        self,
        action_id: str,
        step: str,
        status: str,
        details: dict[str, Any] | None,
        timestamp: datetime | None,
    ) -> bool:
        body = step_body(step, status, details, timestamp)
        return self._queue(Event(STEP, body, target=str(action_id)))

    def _audit(self, body: dict[str, Any]) -> bool:
        return self._queue(Event(AUDIT, clean(body)))

    # The job logger's recording API (the mapping is `job_logger_fields`)

    def _job_log(
        self,
        action_type: str,
        status: str,
        legacy: dict[str, Any],
        fields: dict[str, Any],
    ) -> str:
        mapped = job_logger_fields(**legacy)
        return self._record(action_type, {**_merge_metadata(fields, mapped), "status": status})

    def _job_update(self, action_id: str, legacy: dict[str, Any], fields: dict[str, Any]) -> bool:
        mapped = job_logger_fields(**legacy)
        return self._update(action_id, _merge_metadata(fields, mapped))

    def stats(self) -> dict[str, int]:
        """Counters: queued (waiting now), sent, retried, dropped, rejected, spooled, …"""
        if self._pipeline is None:
            return {
                "queued": 0,
                "sent": 0,
                "retried": 0,
                "dropped": self._disabled_drops,
                "rejected": 0,
                "spooled": 0,
                "failed_requests": 0,
            }
        return self._pipeline.stats()

    def _flush(self, timeout: float | None) -> bool:
        if self._pipeline is None:
            return True
        return self._pipeline.flush(self.timeout if timeout is None else timeout)

    def _close(self, timeout: float | None) -> bool:
        if self._pipeline is None:
            return True
        return self._pipeline.close(self.timeout if timeout is None else timeout)

    def _headers(self) -> dict[str, str]:
        from actionlog_client._version import __version__

        return {"X-API-Key": self.api_key, "User-Agent": f"actionlog-client/{__version__}"}


def duration_fields(elapsed_seconds: float) -> dict[str, Any]:
    return {"execution_time_ms": seconds_to_ms(elapsed_seconds)}


Hook = Callable[..., Any]
