"""Drop-in facades for the loggers that applications wrote before the service existed.

Each is a thin layer over the same `ActionLogger` (queue, retries, spool, exactly-once): moving
from one is a change of import.

- `action_logs`: the in-process action log's
  `log_action(service, action, status, duration, error=None)` and its readers
  (`get_recent_actions`, `get_failed_actions`, `get_actions_by_service`, `get_action_stats`).
- `activity_logger`: the per-session `ActivityLogger` (`start_operation`,
  `complete_operation(success, details, error)`, `log_s3_operation`, …, `get_summary`).
- `action_attempts`: the attempt logger's `ActionLogger().start_action_attempt(...)` returning an
  attempt with `log_step`, `mark_success`, `mark_failure`.

Each uses `actionlog_client.get_action_logger()` (ACTIONLOG_URL, ACTIONLOG_API_KEY) unless
given a logger.
"""
