"""A real service process for browser tests: `actionlog serve` on a free port, with real data.

The process serves the test session's migrated database (SQLite file or PostgreSQL), binds
127.0.0.1 on a port the OS picked, and is stopped when the session ends. Data is recorded
over HTTP through the public API, as an application would.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ADMIN, ADMIN_TOKEN

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(database_url: str, log_path: Path) -> Iterator[str]:
    """Run `actionlog serve` on the database; yields its base URL, stops it afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "warning",
        "WORKERS": "1",
        "HOST": "127.0.0.1",
    }
    command = [str(Path(sys.executable).with_name("actionlog")), "serve", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"actionlog serve exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("actionlog serve did not become ready in 30 s")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Recorded:
    """What the browser tests expect to find: a tenant's key and a few of its records."""

    base: str
    key: str
    read_key: str
    write_key: str
    other_key: str
    failed_id: str = ""
    retry_id: str = ""
    xss_id: str = ""
    other_id: str = ""
    session_id: str = "sess-browser"
    ids: list[str] = field(default_factory=list)


def _post(client: httpx.Client, path: str, key: str, body: Any) -> Any:
    response = client.post(path, json=body, headers={"X-API-Key": key})
    assert response.status_code in (200, 201), response.text
    return response.json()


def record_data(base: str) -> Recorded:
    """Two tenants; the first gets 70 actions, a failure and its retry, an XSS one, audits."""
    with httpx.Client(base_url=base, timeout=30) as client:

        def tenant(name: str) -> tuple[str, str]:
            response = client.post("/api/v1/admin/tenants", json={"name": name}, headers=ADMIN)
            assert response.status_code == 201, response.text
            return response.json()["id"], response.json()["api_key"]

        def key(tenant_id: str, scopes: list[str]) -> str:
            response = client.post(
                f"/api/v1/admin/tenants/{tenant_id}/keys",
                json={"name": "browser", "scopes": scopes},
                headers=ADMIN,
            )
            assert response.status_code == 201, response.text
            return str(response.json()["key"])

        tenant_id, admin_key = tenant("Browser Co")
        other_id, other_key = tenant("Other Co")
        data = Recorded(
            base=base,
            key=admin_key,
            read_key=key(tenant_id, ["read"]),
            write_key=key(tenant_id, ["write"]),
            other_key=other_key,
        )
        batch = [
            {
                "action_type": "s3_export" if i % 2 else "email_send",
                "provider_name": "s3" if i % 2 else "sendgrid",
                "service": "ExportService",
                "source": "scheduled_job",
                "user_id": f"user-{i % 3}",
                "session_id": data.session_id if i < 6 else None,
                "execution_time_ms": 100 + i * 7,
            }
            for i in range(70)
        ]
        data.ids = _post(client, "/api/v1/logs/actions/batch", admin_key, batch)["ids"]
        failed = _post(client, "/api/v1/logs/actions", admin_key, {
            "action_type": "crm_update", "provider_name": "hubspot", "status": "failed",
            "error_type": "RateLimitError", "error_message": "HubSpot answered 429 after 245 ms",
            "correlation_id": "inc-777", "session_id": data.session_id, "user_id": "alice",
            "execution_time_ms": 245, "request_payload": {"contact": {"id": 4812, "stage": "lead"}},
            "steps": [
                {"step": "validate", "status": "done"},
                {"step": "call hubspot", "status": "failed"},
            ],
        })  # fmt: skip
        data.failed_id = failed["id"]
        retry = _post(client, "/api/v1/logs/actions", admin_key, {
            "action_type": "crm_update", "provider_name": "hubspot", "status": "success",
            "correlation_id": "inc-777", "session_id": data.session_id, "execution_time_ms": 180,
            "response_data": {"id": "4812", "stage": "customer"},
        })  # fmt: skip
        data.retry_id = retry["id"]
        xss = _post(client, "/api/v1/logs/actions", admin_key, {
            "action_type": "xss_probe", "action_name": XSS, "status": "failed",
            "error_message": XSS, "request_payload": {"html": XSS}, "user_id": XSS,
            "steps": [{"step": XSS, "status": "failed"}],
        })  # fmt: skip
        data.xss_id = xss["id"]
        for action, before, after in (
            ("create", None, {"stage": "lead", "owner": "bob"}),
            ("update", {"stage": "lead", "owner": "bob"}, {"stage": "customer", "owner": "bob"}),
        ):
            _post(client, "/api/v1/logs/audits", admin_key, {
                "action": action, "resource_type": "deal", "resource_id": "D-100",
                "user_id": "alice", "before": before, "after": after,
                "correlation_id": "inc-777" if action == "update" else None,
            })  # fmt: skip
        theirs = _post(client, "/api/v1/logs/actions", other_key, {"action_type": "their_secret"})
        data.other_id = theirs["id"]
        assert other_id != tenant_id
        return data
