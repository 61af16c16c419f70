"""Schemathesis against a live service, once per database: no 5xx on any generated input, and
every response as the OpenAPI document says (config and exclusions: schemathesis.toml).

The service is the test session's app served by uvicorn on a free port of 127.0.0.1; the
generated requests carry a tenant key with every scope and the admin token, so tenant and admin
routes are both exercised past authentication. Bounded by `max-examples` and a timeout.
"""

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import ADMIN_TOKEN, TenantHandle, create_tenant
from tests.hardening.conftest import live

CONFIG = Path(__file__).with_name("schemathesis.toml")
TIMEOUT_SECONDS = 420
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


async def _record_sample(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    """A few rows, so that listings, statistics, exports and trails have data to return."""
    actions = [
        {"action_type": "crm_create", "provider_name": "hubspot", "execution_time_ms": 120},
        {"action_type": "job", "status": "failed", "error_message": "timeout after 30s"},
        {"action_type": "export", "status": "pending", "metadata": {"big": 2**70}},
    ]
    response = await client.post("/api/v1/logs/actions/batch", json=actions, headers=tenant.headers)
    assert response.status_code == 201, response.text
    audit = {
        "action": "update",
        "resource_type": "contact",
        "resource_id": "4812",
        "before": {"a": 1},
        "after": {"a": 2},
    }
    response = await client.post("/api/v1/logs/audits", json=audit, headers=tenant.headers)
    assert response.status_code == 201, response.text


async def test_schemathesis_finds_no_server_error_and_no_nonconformance(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await create_tenant(client, "Schemathesis")
    await _record_sample(client, tenant)
    environment = {
        **os.environ,
        "ACTIONLOG_SCHEMATHESIS_KEY": tenant.key,
        "ACTIONLOG_SCHEMATHESIS_ADMIN_TOKEN": ADMIN_TOKEN,
        "NO_COLOR": "1",
    }
    async with live(app) as url:
        process = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS),
            "--config-file",
            str(CONFIG),
            "run",
            f"{url}/openapi.json",
            # One worker: with two, CPython 3.11's AST compiler (which Hypothesis drives from
            # both threads) now and then fails with "AST constructor recursion depth mismatch",
            # a runtime error of the tool, not of the service, which fails the run.
            "--workers",
            "1",
            "--seed",
            os.environ.get("SCHEMATHESIS_SEED", "14"),
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
            cwd=tmp_path,
            env=environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), TIMEOUT_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            pytest.fail(f"Schemathesis did not finish within {TIMEOUT_SECONDS}s")
    text = output.decode(errors="replace")
    summary = text[text.rfind("SUMMARY") :] if "SUMMARY" in text else text[-3000:]
    print(summary)  # the figures (cases, failures) land in the test log
    assert process.returncode == 0, text[-20000:]
