"""Process life: fork (plain and multiprocessing), the spool across a restart and a crash."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from actionlog_client import ActionLogger

from .conftest import MakeLogger, MakePeer, Service, Tenant, make_tenant

_inherited: ActionLogger | None = None


def _child_logs_and_returns(count: int, queue: Any) -> None:
    """A multiprocessing child: logs and returns without flushing (exit must deliver)."""
    assert _inherited is not None
    queue.put([_inherited.log("mp_child", metadata={"n": n}) for n in range(count)])


def test_forked_child_logs_and_its_events_arrive(tenant: Tenant, make_logger: MakeLogger) -> None:
    logger = make_logger(tenant.url, tenant.key)
    before = logger.log("parent_event")
    assert logger.flush(5)  # the parent's worker thread and connections exist
    queued_in_parent = logger.log("parent_event", metadata={"queued": "at fork"})
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(read)
            ids = [logger.log("child_event", metadata={"n": n}) for n in range(3)]
            ok = logger.flush(10)
            report = {"ids": ids, "ok": ok, "stats": logger.stats()}
            os.write(write, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        report = json.loads(pipe.read())
    os.waitpid(pid, 0)
    assert report["ok"] is True
    assert report["stats"]["sent"] == 3  # the child did not send what the parent had queued
    stored = {r["id"] for r in tenant.actions(action_type="child_event")}
    assert stored == set(report["ids"])
    after = logger.log("parent_event")
    assert logger.flush(5)  # the parent keeps working
    parents = {r["id"] for r in tenant.actions(action_type="parent_event")}
    assert parents == {before, queued_in_parent, after}


def test_multiprocessing_child_delivers_at_exit(tenant: Tenant, make_logger: MakeLogger) -> None:
    global _inherited
    _inherited = make_logger(tenant.url, tenant.key, flush_interval=30)
    _inherited.log("mp_parent")
    assert _inherited.flush(5)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_logs_and_returns, args=(4, queue))
    child.start()
    ids = queue.get(timeout=20)
    child.join(20)
    assert child.exitcode == 0
    # flush_interval=30: only closing at the child's exit can have sent them this soon
    assert {r["id"] for r in tenant.actions(action_type="mp_child")} == set(ids)


def test_spool_survives_a_restart_of_the_logger(
    tenant: Tenant, peer: MakePeer, make_logger: MakeLogger, tmp_path: Path
) -> None:
    spool = tmp_path / "spool.db"
    p = peer([])
    p.down()
    first = make_logger(p.url, tenant.key, spool_path=spool, timeout=1)
    ids = [first.log("spooled", metadata={"n": n}) for n in range(20)]
    started = first.start_action("spooled_flow")
    first.complete_action(started, result_message="done while down")
    assert first.close(timeout=1) is False
    assert first.stats()["spooled"] == 21
    p.up()
    second = make_logger(p.url, tenant.key, spool_path=spool)
    assert second.flush(timeout=20)
    assert sorted(r["id"] for r in tenant.actions(action_type="spooled")) == sorted(ids)
    assert tenant.action(started)["status"] == "success"
    assert second.stats()["sent"] == 21


def test_spool_survives_a_crash(
    tenant: Tenant, peer: MakePeer, make_logger: MakeLogger, tmp_path: Path
) -> None:
    spool = tmp_path / "spool.db"
    p = peer([])
    p.down()
    script = textwrap.dedent(
        f"""
        import sys, time
        from actionlog_client import ActionLogger
        logger = ActionLogger({p.url!r}, {tenant.key!r}, spool_path={str(spool)!r},
                              flush_interval=0.05, timeout=1)
        ids = [logger.log("crashed", metadata={{"n": n}}) for n in range(10)]
        while logger.stats()["spooled"] < 10:
            time.sleep(0.02)
        print(" ".join(ids), flush=True)
        time.sleep(60)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    ids = process.stdout.readline().split()
    os.kill(process.pid, signal.SIGKILL)  # no atexit, no close: a crash
    process.wait(10)
    assert len(ids) == 10
    p.up()
    survivor = make_logger(p.url, tenant.key, spool_path=spool)
    assert survivor.flush(timeout=20)
    assert sorted(r["id"] for r in tenant.actions(action_type="crashed")) == sorted(ids)


def test_spool_rows_go_only_to_their_own_tenant(
    running: Service, tenant: Tenant, peer: MakePeer, make_logger: MakeLogger, tmp_path: Path
) -> None:
    spool = tmp_path / "shared.db"
    other = make_tenant(running, "Other spool tenant")
    p = peer([])
    p.down()
    mine = make_logger(p.url, tenant.key, spool_path=spool, timeout=1)
    mine_id = mine.log("mine")
    mine.close(timeout=0.5)
    p.up()
    theirs = make_logger(p.url, other.key, spool_path=spool)
    their_id = theirs.log("theirs")
    assert theirs.flush(timeout=10)
    assert [r["id"] for r in other.actions()] == [their_id]  # my row was not sent with their key
    again = make_logger(p.url, tenant.key, spool_path=spool)
    assert again.flush(timeout=10)
    assert [r["id"] for r in tenant.actions()] == [mine_id]
