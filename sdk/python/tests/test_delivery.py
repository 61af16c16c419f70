"""Delivery: backoff honouring Retry-After, exactly once through lost answers, 422 splits,
follow-ups after their start was acknowledged, and never raising into the application."""

import logging
import time

import pytest

from actionlog_client import EventsDropped, EventsRejected, QueueFull, ServiceUnavailable

from .conftest import Errors, MakeLogger, MakePeer, Service, Tenant


@pytest.mark.parametrize("status", ["503", "429"])
def test_retry_honours_retry_after(
    status: str, tenant: Tenant, peer: MakePeer, make_logger: MakeLogger
) -> None:
    errors = Errors()
    p = peer([status], retry_after="1")
    logger = make_logger(p.url, tenant.key, on_error=errors)
    action_id = logger.log("s3_export", status="success")
    assert logger.flush(timeout=15)
    arrivals = p.steps("/actions/batch")
    assert [step for _, step in arrivals] == [status, "forward"]
    assert arrivals[1][0] - arrivals[0][0] >= 1.0  # not before the Retry-After
    assert tenant.action(action_id)["action_type"] == "s3_export"
    unavailable = errors.of(ServiceUnavailable)
    assert len(unavailable) == 1 and unavailable[0][0].status_code == int(status)  # type: ignore[attr-defined]
    assert logger.stats()["retried"] == 1 and logger.stats()["sent"] == 1


def test_lost_answer_is_not_stored_twice(
    tenant: Tenant, peer: MakePeer, make_logger: MakeLogger
) -> None:
    """The batch reaches the service, the answer is lost; the retry is an idempotent replay."""
    p = peer(["drop", "drop"])
    logger = make_logger(p.url, tenant.key)
    ids = [logger.log("crm_create", provider_name="hubspot", metadata={"n": n}) for n in range(5)]
    assert logger.flush(timeout=15)
    assert [step for _, step in p.steps("/actions/batch")] == ["drop", "drop", "forward"]
    stored = tenant.actions(action_type="crm_create")
    assert sorted(r["id"] for r in stored) == sorted(ids)
    assert logger.stats()["sent"] == 5


def test_invalid_events_are_split_out(tenant: Tenant, make_logger: MakeLogger) -> None:
    errors = Errors()
    logger = make_logger(tenant.url, tenant.key, on_error=errors)
    good = [logger.log("email_send", metadata={"n": n}) for n in range(3)]
    bad_status = logger.log("email_send", status="bogus")
    too_long = logger.log("x" * 101)
    good.append(logger.log("email_send", metadata={"n": 3}))
    assert logger.flush(timeout=10)
    assert sorted(r["id"] for r in tenant.actions(action_type="email_send")) == sorted(good)
    rejected = errors.of(EventsRejected)
    assert sorted(ev[0]["id"] for _, ev in rejected) == sorted([bad_status, too_long])
    for exc, _ in rejected:
        assert exc.status_code == 422  # type: ignore[attr-defined]
    stats = logger.stats()
    assert stats["sent"] == 4 and stats["rejected"] == 2 and stats["queued"] == 0


def test_update_of_a_refused_start_is_refused_too(tenant: Tenant, make_logger: MakeLogger) -> None:
    errors = Errors()
    logger = make_logger(tenant.url, tenant.key, on_error=errors)
    action_id = logger.start_action("x" * 101)
    assert logger.flush(timeout=10)
    logger.complete_action(action_id)
    assert logger.flush(timeout=10)
    assert logger.stats()["rejected"] == 2
    assert "refused" in str(errors.of(EventsRejected)[-1][0])


def test_updates_merge_into_a_queued_start(tenant: Tenant, make_logger: MakeLogger) -> None:
    logger = make_logger(tenant.url, tenant.key, flush_interval=5)
    action_id = logger.start_action("s3_export", "Export", action_details={"bucket": "exports"})
    logger.update_action(action_id, "in_progress", action_details={"rows": 10})
    logger.complete_action(action_id, result_message="done", action_details={"rows": 1200})
    assert logger.flush(timeout=10)
    record = tenant.action(action_id)
    assert record["status"] == "success"
    assert record["metadata"] == {"bucket": "exports", "rows": 1200}
    assert record["response_data"] == {"result_message": "done"}
    assert record["started_at"] is not None and record["completed_at"] is not None
    assert record["execution_time_ms"] is not None


def test_follow_ups_after_the_start_was_acknowledged(
    tenant: Tenant, make_logger: MakeLogger
) -> None:
    logger = make_logger(tenant.url, tenant.key)
    action_id = logger.start_action("s3_export", action_details={"bucket": "exports"})
    assert logger.flush(timeout=10)
    assert tenant.action(action_id)["status"] == "in_progress"
    with logger.action("inner", parent_id=action_id) as inner:
        inner.step("upload", "in_progress", {"bytes": 10})
    logger._step(action_id, "upload", "done", {"bytes": 1024}, None)
    logger.update_action(action_id, action_details={"rows": 5})
    logger.complete_action(action_id, result_message="exported")
    assert logger.flush(timeout=10)
    record = tenant.action(action_id)
    assert record["status"] == "success"
    assert [s["step"] for s in record["steps"]] == ["upload"]
    assert record["metadata"] == {"bucket": "exports", "rows": 5}
    assert record["response_data"] == {"result_message": "exported"}
    assert tenant.action(inner.id)["parent_id"] == action_id


def test_lost_answers_of_follow_ups_do_not_repeat_them(
    tenant: Tenant, peer: MakePeer, make_logger: MakeLogger
) -> None:
    """A step and a completion whose answers are lost are applied once."""
    p = peer(["forward", "drop", "drop"])  # the start goes through; the step's and the
    # completion's answers are lost (the GET that looks for the step is never scripted)
    errors = Errors()
    logger = make_logger(p.url, tenant.key, on_error=errors)
    action_id = logger.start_action("job_execution")
    assert logger.flush(timeout=10)
    logger._step(action_id, "extract", "done", {"rows": 3}, None)
    assert logger.flush(timeout=10)
    logger.complete_action(action_id, result_message="ok")
    assert logger.flush(timeout=10)
    record = tenant.action(action_id)
    assert [s["step"] for s in record["steps"]] == ["extract"]
    assert record["status"] == "success"
    assert not errors.of(EventsRejected)


def test_lost_answer_of_an_audit_record_is_not_stored_twice(
    tenant: Tenant, peer: MakePeer, make_logger: MakeLogger
) -> None:
    p = peer(["drop"])
    logger = make_logger(p.url, tenant.key)
    logger.audit.log_update(
        resource_type="contact",
        resource_id="4812",
        before={"email": "a@old.example"},
        after={"email": "a@new.example", "password": "hunter2"},
        user_id="alice@example.com",
        ip_address="203.0.113.7",
    )
    assert logger.flush(timeout=10)
    trail = tenant.get("/api/v1/logs/audits/resource/contact/4812").json()
    assert len(trail) == 1
    assert trail[0]["changes"]["after"] == {"email": "a@new.example", "password": "[REDACTED]"}


def test_service_down_never_raises(tenant: Tenant, peer: MakePeer, make_logger: MakeLogger) -> None:
    errors = Errors()
    p = peer([])
    logger = make_logger(p.url, tenant.key, on_error=errors, timeout=1)
    p.down()
    action_id = logger.start_action("job_execution")
    logger.complete_action(action_id)
    logger.audit.log_create(resource_type="job", resource_id="1", data={"a": 1})
    assert logger.get_recent_actions() == []
    assert logger.get_action_summary()["total_actions"] == 0
    assert logger.flush(timeout=0.5) is False
    assert errors.of(ServiceUnavailable)
    p.up()
    assert logger.flush(timeout=20)
    assert tenant.action(action_id)["status"] == "success"


def test_wrong_key_is_reported_not_raised(tenant: Tenant, make_logger: MakeLogger) -> None:
    errors = Errors()
    logger = make_logger(tenant.url, "alk_000000000000_nope", on_error=errors)
    logger.log("crm_create")
    assert logger.flush(timeout=10)
    assert logger.stats()["rejected"] == 1
    assert errors.of(EventsRejected)[0][0].status_code == 401  # type: ignore[attr-defined]


def test_full_queue_drops_the_newest(
    tenant: Tenant, peer: MakePeer, make_logger: MakeLogger, caplog: pytest.LogCaptureFixture
) -> None:
    errors = Errors()
    p = peer([])
    p.down()
    logger = make_logger(p.url, tenant.key, max_queue=5, batch_size=5, on_error=errors)
    with caplog.at_level(logging.WARNING, logger="actionlog_client"):
        ids = [logger.log("email_send", metadata={"n": n}) for n in range(8)]
    assert logger.stats()["dropped"] == 3
    assert "dropped" in caplog.text
    strict = make_logger(p.url, tenant.key, max_queue=1, strict=True)
    strict.log("email_send")
    with pytest.raises(QueueFull):
        strict.log("email_send")
    p.up()
    assert logger.flush(timeout=20)
    stored = {r["id"] for r in tenant.actions(action_type="email_send")}
    assert ids[:5] == [i for i in ids if i in stored]  # the oldest five were kept
    time.sleep(0.1)
    assert len(errors.of(EventsDropped)) == 3


def test_tenant_isolation(running: Service, tenant: Tenant, make_logger: MakeLogger) -> None:
    from .conftest import make_tenant

    other = make_tenant(running, "Other tenant")
    their_logger = make_logger(other.url, other.key)
    theirs = their_logger.log("crm_create")
    assert their_logger.flush(5)
    mine = make_logger(tenant.url, tenant.key)
    assert mine.get_action(theirs) is None
    assert mine.get_recent_actions() == []
    assert their_logger.get_action(theirs) is not None


def test_an_id_reused_with_another_body_is_refused_alone(
    tenant: Tenant, make_logger: MakeLogger
) -> None:
    """409 for a batch names the conflicting items; the others are sent again and stored."""
    errors = Errors()
    logger = make_logger(tenant.url, tenant.key, on_error=errors, flush_interval=1)
    at = "2026-01-02T03:04:05Z"  # a replay must repeat the body exactly, times included
    taken = logger.log("crm_create", metadata={"v": 1}, completed_at=at)
    assert logger.flush(10)
    same = logger.log("crm_create", id=taken, metadata={"v": 1}, completed_at=at)  # a replay
    assert logger.flush(10)
    other = logger.log("crm_create", metadata={"v": 3})
    clash = logger.log("crm_create", id=taken, metadata={"v": 2})  # the same id, another body
    assert same == clash == taken
    assert logger.flush(10)
    assert sorted(r["id"] for r in tenant.actions(action_type="crm_create")) == sorted(
        [taken, other]
    )
    assert tenant.action(taken)["metadata"] == {"v": 1}
    assert logger.stats()["sent"] == 3 and logger.stats()["rejected"] == 1
    conflicts = errors.of(EventsRejected)
    assert [(exc.status_code, events[0]["metadata"]) for exc, events in conflicts] == [  # type: ignore[attr-defined]
        (409, {"v": 2})
    ]


def test_a_batch_that_keeps_failing_with_500_is_bisected(
    tenant: Tenant, peer: MakePeer, make_logger: MakeLogger
) -> None:
    """A plain 500 may be one event tripping a bug: after three, the batch is split."""
    p = peer(["500", "500", "500"])
    logger = make_logger(p.url, tenant.key)
    ids = [logger.log("poison_check", metadata={"n": n}) for n in range(4)]
    assert logger.flush(timeout=30)
    sizes = [step for _, step in p.steps("/actions/batch")]
    assert sizes == ["500", "500", "500", "forward", "forward"]  # then two halves
    assert sorted(r["id"] for r in tenant.actions(action_type="poison_check")) == sorted(ids)


def test_strict_flush_raises_and_closed_logger_drops(
    tenant: Tenant, peer: MakePeer, make_logger: MakeLogger
) -> None:
    from actionlog_client import FlushTimeout

    p = peer([])
    p.down()
    strict = make_logger(p.url, tenant.key, strict=True, timeout=1)
    strict.log("strict_check")
    with pytest.raises(FlushTimeout):
        strict.flush(timeout=0.3)
    p.up()
    assert strict.flush(timeout=10)
    assert strict.close(timeout=2)
    strict.log("after_close")  # a closed logger drops (counted), it does not raise
    assert strict.stats()["dropped"] == 1
    assert [r["action_type"] for r in tenant.actions()] == ["strict_check"]
