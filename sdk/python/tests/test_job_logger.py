"""The job logger's module-level API end to end.

Only the module-level functions and `get_action_logger()` are used, configured from
ACTIONLOG_URL and ACTIONLOG_API_KEY as an application would be.
"""

import time
from collections.abc import Iterator
from typing import Any

import pytest

import actionlog_client
from actionlog_client import (
    complete_action,
    fail_action,
    get_action_logger,
    log_action,
    start_action,
)

from .conftest import Service, Tenant


@pytest.fixture
def from_environment(monkeypatch: pytest.MonkeyPatch, tenant: Tenant) -> Iterator[Tenant]:
    monkeypatch.setenv("ACTIONLOG_URL", tenant.url)
    monkeypatch.setenv("ACTIONLOG_API_KEY", tenant.key)
    monkeypatch.setenv("ACTIONLOG_FLUSH_INTERVAL", "0.05")
    actionlog_client.set_action_logger(None)
    yield tenant
    get_action_logger().close(timeout=5)
    actionlog_client.set_action_logger(None)


def test_done_means(from_environment: Tenant, running: Service) -> None:
    tenant = from_environment

    # A start/complete flow and a failure, as the job logger's first example writes them.
    action_id = start_action(
        action_type="data_collection_start",
        action_name="US Congress Data Collection",
        user_id="user@example.com",
        source="ui_button",
        action_details={"sources": ["us_congress"], "lookback_days": 30},
    )
    assert isinstance(action_id, str)
    complete_action(
        action_id=action_id,
        result_message="Collected 12 disclosures",
        action_details={"new_records": 12, "duplicates": 1},
    )
    failed_id = start_action(action_type="ticker_backfill", user_id="system", source="ui_button")
    try:
        raise ConnectionError("Supabase unreachable")
    except Exception as e:
        fail_action(
            action_id=failed_id,
            error_message=str(e),
            action_details={"error_type": type(e).__name__},
        )

    logger = get_action_logger()
    recent = logger.get_recent_actions(limit=10)
    by_id = {row["id"]: row for row in recent}
    done = by_id[action_id]
    assert done["status"] == "completed"
    assert done["result_message"] == "Collected 12 disclosures"
    assert done["action_details"] == {
        "sources": ["us_congress"],
        "lookback_days": 30,
        "new_records": 12,
        "duplicates": 1,
    }
    assert done["user_id"] == "user@example.com" and done["source"] == "ui_button"
    assert done["duration_seconds"] is not None and done["duration_seconds"] >= 0
    failed = by_id[failed_id]
    assert failed["status"] == "failed"
    assert failed["error_message"] == "Supabase unreachable"
    assert failed["error_type"] == "ConnectionError"
    assert [r["id"] for r in logger.get_recent_actions(status="failed", limit=10)] == [failed_id]
    assert [r["id"] for r in logger.get_recent_actions(user_id="system")] == [failed_id]

    summary = logger.get_action_summary(days=7)
    assert summary["total_actions"] == 2
    assert summary["completed_actions"] == 1 and summary["failed_actions"] == 1
    assert summary["success_rate"] == 0.5
    assert set(summary["by_type"]) == {"data_collection_start", "ticker_backfill"}
    assert summary["by_source"] == {"ui_button": 2}

    # With the service stopped, 100 log_action calls return at once and raise nothing.
    running.stop()
    ids = [
        log_action(
            action_type="ticker_backfill",
            status="completed",
            user_id="system",
            source="scheduled_job",
            result_message=f"Updated {n} tickers",
            action_details={"updated_count": n},
        )
        for n in range(100)
    ]
    assert len(set(ids)) == 100
    assert logger.stats()["queued"] == 100  # queued, not sent: nothing waited for the service
    time.sleep(1.0)  # the worker meets the outage and backs off
    assert logger.stats()["retried"] > 0 and logger.stats()["dropped"] == 0

    running.start()
    assert logger.flush(timeout=30) is True
    stored = tenant.actions(source="scheduled_job")
    assert sorted(r["id"] for r in stored) == sorted(ids)  # every one, exactly once
    stats = logger.stats()
    assert stats["queued"] == 0 and stats["sent"] == 102 and stats["dropped"] == 0


def test_mapping_of_job_logger_fields(from_environment: Tenant) -> None:
    tenant = from_environment
    action_id = log_action(
        "job_execution",
        "completed",
        source="scheduled_job",
        job_id="daily_collection",
        job_execution_id="3f1c9a52-0000-4000-8000-000000000001",
        duration_seconds=1.25,
        result_message="ok",
        ip_address="203.0.113.9",
        user_agent="cron/1.0",
        session_id="s-1",
    )
    assert get_action_logger().flush(10)
    record = tenant.action(action_id)
    assert record["status"] == "success"
    assert record["execution_time_ms"] == 1250
    assert record["correlation_id"] == "3f1c9a52-0000-4000-8000-000000000001"
    assert record["metadata"] == {"job_id": "daily_collection"}
    assert record["response_data"] == {"result_message": "ok"}
    assert (record["ip_address"], record["user_agent"], record["session_id"]) == (
        "203.0.113.9",
        "cron/1.0",
        "s-1",
    )
    legacy: Any = get_action_logger().get_recent_actions(
        job_execution_id="3f1c9a52-0000-4000-8000-000000000001"
    )
    assert legacy[0]["job_id"] == "daily_collection" and legacy[0]["duration_seconds"] == 1.25


def test_unconfigured_environment_drops_without_raising(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ACTIONLOG_URL", raising=False)
    monkeypatch.delenv("ACTIONLOG_API_KEY", raising=False)
    actionlog_client.set_action_logger(None)
    try:
        assert isinstance(log_action("anything"), str)
        assert get_action_logger().get_recent_actions() == []
        assert get_action_logger().stats()["dropped"] == 1
    finally:
        actionlog_client.set_action_logger(None)
