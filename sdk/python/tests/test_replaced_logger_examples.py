"""Each replaced logger's own usage examples, copied from its documentation unchanged but for
the import, run against the real service; then what they recorded is read back.

The examples call the application's own functions (`collect_data()`, `s3_manager`, …): the
test defines those, as the application did. The in-process log's route example (`async def
create_case(...)`) is not valid Python as printed and is left out; its `log_action` lines run.
"""

import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

import actionlog_client
from actionlog_client import get_action_logger

from .conftest import Tenant


def run(example: str, namespace: dict[str, Any]) -> dict[str, Any]:
    exec(compile(textwrap.dedent(example), "<example>", "exec"), namespace)
    return namespace


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, tenant: Tenant) -> Iterator[Tenant]:
    """The examples take their service from the environment, as a deployed app would."""
    monkeypatch.setenv("ACTIONLOG_URL", tenant.url)
    monkeypatch.setenv("ACTIONLOG_API_KEY", tenant.key)
    monkeypatch.setenv("ACTIONLOG_FLUSH_INTERVAL", "0.05")
    actionlog_client.set_action_logger(None)
    yield tenant
    get_action_logger().close(timeout=5)
    actionlog_client.set_action_logger(None)


# The job logger (module-level log_action, start_action, …), "Usage Examples" 1 to 3.
JOB_LOGGER_EXAMPLE_1 = """
from actionlog_client import start_action, complete_action, fail_action

# Start tracking
action_id = start_action(
    action_type="data_collection_start",
    action_name="US Congress Data Collection",
    user_id="user@example.com",
    source="ui_button",
    action_details={
        "sources": ["us_congress"],
        "lookback_days": 30
    }
)

try:
    # Perform operation
    result = collect_data()

    # Log success
    complete_action(
        action_id=action_id,
        result_message=f"Collected {result['count']} disclosures",
        action_details={
            "new_records": result['count'],
            "duplicates": result['duplicates']
        }
    )
except Exception as e:
    # Log failure
    fail_action(
        action_id=action_id,
        error_message=str(e),
        action_details={
            "error_type": type(e).__name__
        }
    )
"""

JOB_LOGGER_EXAMPLE_2 = """
from actionlog_client import log_action

log_action(
    action_type="ticker_backfill",
    status="completed",
    user_id="system",
    source="scheduled_job",
    result_message="Updated 50 tickers",
    action_details={"updated_count": 50}
)
"""

JOB_LOGGER_EXAMPLE_3 = """
from actionlog_client import get_action_logger

logger = get_action_logger()

# Get recent failed actions
failed_actions = logger.get_recent_actions(
    status="failed",
    limit=10
)

# Get actions by user
user_actions = logger.get_recent_actions(
    user_id="user@example.com",
    limit=50
)

# Get summary statistics
summary = logger.get_action_summary(days=7)
"""


def test_job_logger_examples(configured: Tenant) -> None:
    outcomes: list[dict[str, int] | Exception] = [
        {"count": 12, "duplicates": 1},
        RuntimeError("Senate site down"),
    ]

    def collect_data() -> dict[str, int]:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    ok = run(JOB_LOGGER_EXAMPLE_1, {"collect_data": collect_data})
    failed = run(JOB_LOGGER_EXAMPLE_1, {"collect_data": collect_data})
    run(JOB_LOGGER_EXAMPLE_2, {})
    read = run(JOB_LOGGER_EXAMPLE_3, {})
    assert [a["id"] for a in read["failed_actions"]] == [failed["action_id"]]
    assert read["failed_actions"][0]["action_details"] == {
        "sources": ["us_congress"],
        "lookback_days": 30,
        "error_type": "RuntimeError",
    }
    assert {a["id"] for a in read["user_actions"]} == {ok["action_id"], failed["action_id"]}
    done = next(a for a in read["user_actions"] if a["id"] == ok["action_id"])
    assert done["result_message"] == "Collected 12 disclosures"
    assert read["summary"]["total_actions"] == 3 and read["summary"]["failed_actions"] == 1


# The in-process action log (log_action(service, action, …)), "Public API for Logging".
ACTION_LOGS_EXAMPLE = """
from actionlog_client.compat.action_logs import log_action

# Log successful action
log_action("CaseService", "createCase", "success", 45)

# Log failed action
log_action("ChatService", "sendMessage", "failed", 250,
           error="OpenAI API rate limit exceeded")
"""


def test_action_logs_example(configured: Tenant) -> None:
    from actionlog_client.compat import action_logs

    run(ACTION_LOGS_EXAMPLE, {})
    recent = action_logs.get_recent_actions(limit=10)
    assert [(a["service"], a["action"], a["status"], a["duration"]) for a in recent] == [
        ("ChatService", "sendMessage", "failed", 250),
        ("CaseService", "createCase", "success", 45),
    ]
    assert recent[0]["error"] == "OpenAI API rate limit exceeded"
    assert recent[1]["error"] is None and recent[1]["timestamp"]
    failed = action_logs.get_failed_actions(limit=5)
    assert all(a["status"] == "failed" for a in failed) and len(failed) == 1
    assert [a["action"] for a in action_logs.get_actions_by_service("CaseService")] == [
        "createCase"
    ]
    assert action_logs.get_action_stats() == {
        "total": 2,
        "failed": 1,
        "byService": {"CaseService": 1, "ChatService": 1},
    }
    cleared = action_logs.clear_action_logs()  # the tenant's first key has every scope
    assert cleared is not None and cleared["deleted"] == 2
    assert action_logs.get_recent_actions() == []


# ActivityLogger: "Operation Lifecycle Tracking" and both integration examples.
ACTIVITY_LOGGER_LIFECYCLE = """
# Start long-running operation
logger.start_operation('s3_export', {'files': 11})

# Complete operation
logger.complete_operation(success=True, details={'uploaded': 11})
"""

ACTIVITY_LOGGER_S3_EXPORT = """
# Start tracking
activity_logger.start_operation('s3_export')

try:
    # Perform S3 export
    result = s3_manager.export_review()
    
    # Log success
    activity_logger.complete_operation(success=True, details={
        'files_uploaded': result['file_count'],
        'location': result['s3_path']
    })
    
    activity_logger.log_s3_operation('export', success=True, details=result)
    
except Exception as e:
    # Log failure
    activity_logger.complete_operation(success=False, error=str(e))
    activity_logger.log_s3_operation('export', success=False, error=str(e))
"""

ACTIVITY_LOGGER_SUBMIT = """
# Document generation
activity_logger.start_operation('document_generation')

try:
    # Create reviewed document
    output_path = create_document_with_comments()
    
    # Log success
    activity_logger.complete_operation(success=True, details={
        'output_file': filename,
        'comments_added': len(comments)
    })
    
except Exception as e:
    # Log failure
    activity_logger.complete_operation(success=False, error=str(e))
"""


class S3Manager:
    def __init__(self) -> None:
        self.calls = 0

    def export_review(self) -> dict[str, Any]:
        self.calls += 1
        if self.calls > 1:
            raise PermissionError("Access denied")
        return {"file_count": 11, "s3_path": "s3://felix-s3-bucket/20241114_123456_document"}


def test_activity_logger_examples(configured: Tenant) -> None:
    from actionlog_client.compat.activity_logger import ActivityLogger

    activity_logger = ActivityLogger(session_id="review-session-1")
    namespace = {
        "logger": activity_logger,
        "activity_logger": activity_logger,
        "s3_manager": S3Manager(),
        "create_document_with_comments": lambda: "/tmp/reviewed.docx",
        "filename": "reviewed.docx",
        "comments": ["a", "b", "c"],
    }
    run(ACTIVITY_LOGGER_LIFECYCLE, namespace)
    run(ACTIVITY_LOGGER_S3_EXPORT, namespace)  # succeeds
    run(ACTIVITY_LOGGER_S3_EXPORT, namespace)  # Access denied
    run(ACTIVITY_LOGGER_SUBMIT, namespace)
    summary = activity_logger.get_summary()
    # the lifecycle operation, two exports (operation and s3 record each), one document
    assert summary["total_activities"] == 6
    assert (summary["success_count"], summary["failed_count"]) == (4, 2)
    assert summary["success_rate"] == 66.7
    assert summary["action_breakdown"] == {"s3": 5, "document": 1}
    failures = activity_logger.get_failed_activities()
    assert sorted((f["action"], f["error"]) for f in failures) == [
        ("s3_export", "Access denied"),
        ("s3_export", "Access denied"),
    ]
    tenant = configured
    lifecycle = tenant.actions(session_id="review-session-1", action_type="s3_export")[-1]
    assert tenant.action(lifecycle["id"])["metadata"] == {"files": 11, "uploaded": 11}
    generated = tenant.actions(action_type="document_generation")[0]
    assert tenant.action(generated["id"])["metadata"] == {
        "output_file": "reviewed.docx",
        "comments_added": 3,
    }


# The attempt logger (ActionLogger().start_action_attempt), "Usage Examples" 1 to 3.
ATTEMPT_LOGGER_EXAMPLE_1 = """
from actionlog_client.compat.action_attempts import ActionLogger

action_logger = ActionLogger()

# Start logging an action attempt
attempt = action_logger.start_action_attempt(
    action_id="restart_db_001",
    action_type="restart_database_connection", 
    parameters={"database": "postgresql", "timeout": 30},
    incident_id="inc_001"
)
"""

ATTEMPT_LOGGER_EXAMPLE_2 = """
# Log execution progress
attempt.log_step("validation", "in_progress", {"checking": "connection_pool"})
attempt.log_step("execution", "started", {"restarting": "database_service"})

# Mark completion
attempt.mark_success({"connection_pool_size": 10, "response_time": "22ms"})
# OR
attempt.mark_failure("Connection refused", {"error_code": "ECONNREFUSED"})
"""

ATTEMPT_LOGGER_EXAMPLE_3 = """
# Get recent statistics
stats = action_logger.get_action_statistics(days_back=7)
print(f"Success rate: {stats['success_rate']:.2%}")

# Get incident-specific attempts
attempts = action_logger.get_action_attempts_by_incident("inc_001")
for attempt in attempts:
    print(f"Action: {attempt['action_type']} - Status: {attempt['status']}")
"""


def test_attempt_logger_examples(configured: Tenant, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run(ATTEMPT_LOGGER_EXAMPLE_1, {})
    attempt = namespace["attempt"]
    run(ATTEMPT_LOGGER_EXAMPLE_2, namespace)  # both marks, as printed: the first one wins
    run(ATTEMPT_LOGGER_EXAMPLE_3, namespace)
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "Success rate: 100.00%",
        "Action: restart_database_connection - Status: success",
    ]
    record = configured.action(attempt.attempt_id)
    assert record["action_name"] == "restart_db_001"
    assert record["correlation_id"] == "inc_001"
    assert record["request_payload"] == {"database": "postgresql", "timeout": 30}
    assert [(s["step"], s["status"]) for s in record["steps"]] == [
        ("validation", "in_progress"),
        ("execution", "started"),
    ]
    assert record["response_data"] == {"connection_pool_size": 10, "response_time": "22ms"}
    assert record["status"] == "success"
