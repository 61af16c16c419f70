"""Fixtures of the retention tests: an application of their own, with its own ARCHIVE_DIR.

Each test gets a fresh app over the session's database (so the scheduler, the pruner and the
archive directory are the test's own), with small batches so that batching is exercised.
Old rows are made by moving the clock, not the rows: the pruner is given a `now` in the
future (editing `created_at` in SQL would break the audit chain, which hashes it).
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from app.core.db import utcnow
from app.main import create_app
from tests.conftest import ADMIN, TenantHandle, create_tenant

AUDITS = "/api/v1/logs/audits"
ACTIONS = "/api/v1/logs/actions"
BATCH_ROWS = 3


@dataclass
class Retained:
    app: Any
    client: httpx.AsyncClient
    archive_dir: Path

    @property
    def pruner(self) -> Any:
        return self.app.state.pruner

    @property
    def scheduler(self) -> Any:
        return self.app.state.retention_scheduler


async def _retained(settings: Settings, archive_dir: Path, **extra: Any) -> AsyncIterator[Retained]:
    own = settings.model_copy(
        update={
            "archive_dir": archive_dir,
            "retention_batch_rows": BATCH_ROWS,
            "retention_batch_pause_ms": 0,
            "retention_duty": 1.0,
            "retention_interval_minutes": 0,
            **extra,
        }
    )
    application = create_app(own)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield Retained(application, c, archive_dir)


@pytest.fixture
async def retained(settings: Settings, tmp_path: Path) -> AsyncIterator[Retained]:
    async for value in _retained(settings, tmp_path / "archive"):
        yield value


@pytest.fixture
def make_retained(settings: Settings, tmp_path: Path) -> Any:
    """An app with other settings (ARCHIVE=false, a short scheduler interval...)."""

    def make(**extra: Any) -> AsyncIterator[Retained]:
        return _retained(settings, tmp_path / "archive", **extra)

    return make


async def set_policy(
    client: httpx.AsyncClient, tenant: TenantHandle, **policy: int | None
) -> dict[str, Any]:
    response = await client.patch(f"/api/v1/admin/tenants/{tenant.id}", json=policy, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def record_audits(client: httpx.AsyncClient, tenant: TenantHandle, n: int, tag: str) -> None:
    for i in range(n):
        body = {
            "action": "update",
            "resource_type": "contact",
            "resource_id": f"{tag}-{i}",
            "before": {"n": i, "price": 1.5},
            "after": {"n": i + 1, "price": 2.25, "tags": ["a", "b"]},
            "user_id": "u-1",
        }
        response = await client.post(AUDITS, json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text


async def record_actions(client: httpx.AsyncClient, tenant: TenantHandle, n: int) -> None:
    for i in range(n):
        body = {"action_type": f"t{i % 2}", "provider_name": "s3", "execution_time_ms": 10 + i}
        response = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text


def later(moment: datetime, days: int) -> datetime:
    """The `now` at which rows from before `moment` are older than `days` days."""
    return moment + timedelta(days=days)


async def tenant_with_old_and_new_audits(
    client: httpx.AsyncClient, old: int = 7, new: int = 2
) -> tuple[TenantHandle, datetime]:
    """A tenant with audit retention 30 days, `old` rows before the returned moment, `new` after.

    Its own rows (created, key issued, policy set) come first: 3 + `old` rows are old.
    """
    tenant = await create_tenant(client, "Retained Co")
    await set_policy(client, tenant, audit_retention_days=30)
    await record_audits(client, tenant, old, "old")
    moment = utcnow()
    await record_audits(client, tenant, new, "new")
    return tenant, moment
