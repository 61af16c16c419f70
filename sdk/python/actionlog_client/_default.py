"""The job logger's module-level functions, on one logger configured from the environment.

`ACTIONLOG_URL` and `ACTIONLOG_API_KEY` say where to send; optional `ACTIONLOG_SPOOL_PATH`,
`ACTIONLOG_BATCH_SIZE`, `ACTIONLOG_FLUSH_INTERVAL`, `ACTIONLOG_TIMEOUT` and
`ACTIONLOG_STRICT` (`true`/`1`) tune it. Without a URL or key the logger is disabled: it
logs one warning and drops events (counted in `stats()`), so an unconfigured environment
(a developer's laptop, a unit test) never breaks the application; `ACTIONLOG_STRICT=true`
makes that an error instead.
"""

import os
import threading
from typing import Any

from actionlog_client.logger import ActionLogger

_lock = threading.Lock()
_logger: ActionLogger | None = None


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _from_environment() -> ActionLogger:
    env = os.environ
    return ActionLogger(
        env.get("ACTIONLOG_URL"),
        env.get("ACTIONLOG_API_KEY"),
        batch_size=int(env.get("ACTIONLOG_BATCH_SIZE", "100")),
        flush_interval=float(env.get("ACTIONLOG_FLUSH_INTERVAL", "0.5")),
        timeout=float(env.get("ACTIONLOG_TIMEOUT", "5")),
        strict=_env_flag("ACTIONLOG_STRICT"),
        spool_path=env.get("ACTIONLOG_SPOOL_PATH") or None,
    )


def get_action_logger() -> ActionLogger:
    """The process's logger, created on first use from the environment."""
    global _logger
    with _lock:
        if _logger is None:
            _logger = _from_environment()
        return _logger


def set_action_logger(logger: ActionLogger | None) -> None:
    """Use `logger` for the module-level functions (None: build one from the environment
    again on next use). The previous logger is not closed."""
    global _logger
    with _lock:
        _logger = logger


def log_action(action_type: str, status: str = "success", **kwargs: Any) -> str:
    return get_action_logger().log_action(action_type, status, **kwargs)


def start_action(action_type: str, action_name: str | None = None, **kwargs: Any) -> str:
    return get_action_logger().start_action(action_type, action_name, **kwargs)


def update_action(action_id: str, status: str | None = None, **kwargs: Any) -> bool:
    return get_action_logger().update_action(action_id, status, **kwargs)


def complete_action(action_id: str, result_message: str | None = None, **kwargs: Any) -> bool:
    return get_action_logger().complete_action(action_id, result_message, **kwargs)


def fail_action(action_id: str, error_message: str | None = None, **kwargs: Any) -> bool:
    return get_action_logger().fail_action(action_id, error_message, **kwargs)


def get_recent_actions(**kwargs: Any) -> list[dict[str, Any]]:
    return get_action_logger().get_recent_actions(**kwargs)


def get_action_summary(days: float = 7, **kwargs: Any) -> dict[str, Any]:
    return get_action_logger().get_action_summary(days, **kwargs)


def flush(timeout: float | None = None) -> bool:
    return get_action_logger().flush(timeout)
