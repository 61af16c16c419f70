"""`logger.action(...)`, `@logger.track`, the async logger and the audit helpers."""

import asyncio

import pytest

from actionlog_client import AsyncActionLogger

from .conftest import MakeLogger, Tenant


class ExportFailed(RuntimeError):
    pass


def test_action_context_manager(tenant: Tenant, make_logger: MakeLogger) -> None:
    logger = make_logger(tenant.url, tenant.key)
    with logger.action("s3_export", provider_name="s3", metadata={"bucket": "exports"}) as a:
        a.step("upload", "in_progress", {"bytes": 1048576})
        a.step("upload", "done")
        a.update(metadata={"rows": 1200})
    with pytest.raises(ExportFailed), logger.action("s3_export", provider_name="s3") as failed:
        raise ExportFailed("bucket is read-only")
    assert logger.flush(10)
    ok = tenant.action(a.id)
    assert ok["status"] == "success"
    assert [(s["step"], s["status"]) for s in ok["steps"]] == [
        ("upload", "in_progress"),
        ("upload", "done"),
    ]
    assert ok["metadata"] == {"bucket": "exports", "rows": 1200}
    assert ok["execution_time_ms"] is not None and ok["started_at"] and ok["completed_at"]
    bad = tenant.action(failed.id)
    assert bad["status"] == "failure"
    assert (bad["error_type"], bad["error_message"]) == ("ExportFailed", "bucket is read-only")


def test_nested_actions_link_to_the_enclosing_one(tenant: Tenant, make_logger: MakeLogger) -> None:
    logger = make_logger(tenant.url, tenant.key)

    @logger.track("transform")
    def transform() -> None:
        return None

    async def in_task(name: str) -> str:
        with logger.action(name) as inner:
            await asyncio.sleep(0)
            return inner.id

    async def concurrently() -> list[str]:
        return list(await asyncio.gather(in_task("task_a"), in_task("task_b")))

    with logger.action("etl_run", correlation_id="run-42") as outer:
        with logger.action("extract") as extract:
            pass
        transform()
        task_ids = asyncio.run(concurrently())
    with logger.action("standalone") as alone:
        pass
    assert logger.flush(10)
    assert tenant.action(extract.id)["parent_id"] == outer.id
    children = tenant.actions(parent_id=outer.id)
    kinds = sorted(c["action_type"] for c in children)
    assert kinds == ["extract", "task_a", "task_b", "transform"]
    assert {c["correlation_id"] for c in children} == {"run-42"}
    assert {c["id"] for c in children} >= set(task_ids)
    assert tenant.action(alone.id)["parent_id"] is None


def test_track_sync_and_async(tenant: Tenant, make_logger: MakeLogger) -> None:
    logger = make_logger(tenant.url, tenant.key)

    @logger.track("job_execution", source="scheduled_job")
    def nightly(n: int) -> int:
        return n * 2

    @logger.track
    async def fetch(fail: bool) -> str:
        await asyncio.sleep(0.01)
        if fail:
            raise TimeoutError("upstream slow")
        return "ok"

    assert nightly(21) == 42
    assert asyncio.run(fetch(False)) == "ok"
    with pytest.raises(TimeoutError):
        asyncio.run(fetch(True))
    assert logger.flush(10)
    jobs = tenant.actions(action_type="job_execution")
    assert [(j["status"], j["source"], j["action_name"]) for j in jobs] == [
        ("success", "scheduled_job", "test_track_sync_and_async.<locals>.nightly")
    ]
    fetched = {r["status"]: r for r in tenant.actions(action_type="fetch")}
    assert set(fetched) == {"success", "failure"}
    assert fetched["failure"]["error_type"] == "TimeoutError"
    assert fetched["success"]["execution_time_ms"] >= 10


async def test_async_logger(tenant: Tenant) -> None:
    async with AsyncActionLogger(tenant.url, tenant.key, flush_interval=0.05) as logger:
        started = await logger.start_action("data_collection_start", source="ui_button")
        await logger.complete_action(started, result_message="Collected 3")
        failed = await logger.start_action("ticker_backfill")
        await logger.fail_action(failed, "not found", error_type="LookupError")
        async with logger.action("s3_export") as a:
            await a.step("upload", "done", {"bytes": 3})

        @logger.track("job_execution")
        async def job() -> int:
            return 1

        assert await job() == 1
        await logger.audit.log_create(
            resource_type="tenant", resource_id="t-1", data={"name": "Acme"}, user_id="admin"
        )
        assert await logger.flush(10)
        recent = await logger.get_recent_actions(limit=10)
        assert {r["id"]: r["status"] for r in recent if r["id"] in (started, failed)} == {
            started: "completed",
            failed: "failed",
        }
        summary = await logger.get_action_summary(days=1)
        assert summary["total_actions"] == 4 and summary["failed_actions"] == 1
        record = await logger.get_action(a.id)
        assert record is not None and record["steps"][0]["details"] == {"bytes": 3}
        assert await logger.get_action("00000000-0000-7000-8000-000000000000") is None
    trail = tenant.get("/api/v1/logs/audits/resource/tenant/t-1").json()
    assert [row["action"] for row in trail] == ["create"]


def test_audit_helpers_with_auditservice_arguments(tenant: Tenant, make_logger: MakeLogger) -> None:
    from uuid import UUID

    logger = make_logger(tenant.url, tenant.key)
    audit_service = logger.audit
    audit_service.log_create(
        tenant_id=UUID(tenant.id),
        resource_type="tenant",
        resource_id=str(tenant.id),
        user_id="admin@example.com",
        data={"name": "Old Name", "slug": "acme"},
        ip_address="192.168.1.100",
        user_agent="curl/8.0",
    )
    audit_service.log_update(
        tenant_id=UUID(tenant.id),
        resource_type="tenant",
        resource_id=str(tenant.id),
        before={"name": "Old Name"},
        after={"name": "New Name"},
        user_id="admin@example.com",
        ip_address="192.168.1.100",
    )
    audit_service.log_delete(
        tenant_id=UUID(tenant.id),
        resource_type="api_key",
        resource_id="key-12345",
        user_id="admin@example.com",
        data={"key_hash": "..."},
        ip_address="192.168.1.100",
    )
    audit_service.log(
        "export",
        "report",
        "r-1",
        changes={"before": None, "after": {"rows": 10}},
        metadata={"reason": "monthly"},
    )
    assert logger.flush(10)
    trail = tenant.get(f"/api/v1/logs/audits/resource/tenant/{tenant.id}").json()
    ours = [row for row in trail if row["user_id"] == "admin@example.com"]
    assert [row["action"] for row in ours] == ["create", "update"]
    assert ours[1]["changes"]["diff"] == [
        {"path": "name", "kind": "changed", "old": "Old Name", "new": "New Name"}
    ]
    assert ours[0]["user_agent"] == "curl/8.0"
    deleted = tenant.get("/api/v1/logs/audits/resource/api_key/key-12345").json()
    assert deleted[0]["changes"]["before"] == {"key_hash": "..."}
    report = tenant.get("/api/v1/logs/audits/resource/report/r-1").json()
    assert report[0]["metadata"] == {"reason": "monthly"}
