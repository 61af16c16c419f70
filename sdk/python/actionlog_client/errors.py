"""What the client reports when the service cannot take an event.

With `strict=False` (the default) none of these is raised into the application: they reach
`on_error(exc, events)` and the counters of `stats()`. With `strict=True` the calls that can
fail synchronously raise them (a full queue, a read that failed, a flush that timed out or
left events undelivered).
"""

from typing import Any


class ActionLogError(Exception):
    """Base class of every error this package reports."""


class ServiceUnavailable(ActionLogError):
    """The service could not be reached or answered 429/5xx; the events will be retried."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class EventsRejected(ActionLogError):
    """The service refused these events for good (4xx); they are not retried."""

    def __init__(self, message: str, *, status_code: int, detail: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail


class EventsDropped(ActionLogError):
    """Events the client gave up before sending: a full queue, or a close that timed out."""


class QueueFull(EventsDropped):
    """The in-memory queue holds `max_queue` events; the newest was dropped."""


class FlushTimeout(ActionLogError):
    """`flush` or `close` returned at its timeout with events still undelivered."""


class ReadFailed(ActionLogError):
    """A query (`get_recent_actions`, `get_action_summary`, …) did not get an answer."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
