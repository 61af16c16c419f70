"""Client of the Action Log Service: record actions and audit events without ever slowing
down or breaking the application that records them.

    from actionlog_client import ActionLogger
    logger = ActionLogger("http://127.0.0.1:8000", "alk_…")
    with logger.action("s3_export", provider_name="s3") as a:
        a.step("upload", "in_progress", {"bytes": 1024})

The job logger's module-level API (`log_action`, `start_action`, …, `get_action_logger()`) reads
its configuration from ACTIONLOG_URL and ACTIONLOG_API_KEY. Facades for the other hand-built
loggers are in `actionlog_client.compat`; the ASGI middleware is
`actionlog_client.ActionLogMiddleware`.
"""

from actionlog_client._default import (
    complete_action,
    fail_action,
    flush,
    get_action_logger,
    get_action_summary,
    get_recent_actions,
    log_action,
    set_action_logger,
    start_action,
    update_action,
)
from actionlog_client._ids import uuid7
from actionlog_client._version import __version__
from actionlog_client.aio import AsyncAction, AsyncActionLogger
from actionlog_client.errors import (
    ActionLogError,
    EventsDropped,
    EventsRejected,
    FlushTimeout,
    QueueFull,
    ReadFailed,
    ServiceUnavailable,
)
from actionlog_client.logger import Action, ActionLogger
from actionlog_client.middleware import ActionLogMiddleware

__all__ = [
    "Action",
    "ActionLogError",
    "ActionLogMiddleware",
    "ActionLogger",
    "AsyncAction",
    "AsyncActionLogger",
    "EventsDropped",
    "EventsRejected",
    "FlushTimeout",
    "QueueFull",
    "ReadFailed",
    "ServiceUnavailable",
    "__version__",
    "complete_action",
    "fail_action",
    "flush",
    "get_action_logger",
    "get_action_summary",
    "get_recent_actions",
    "log_action",
    "set_action_logger",
    "start_action",
    "update_action",
    "uuid7",
]
