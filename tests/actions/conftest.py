"""Fixtures and helpers of the action-log tests: recording actions through the API."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.actions import rollup_rebuild
from app.actions.models import ActionLog
from tests.conftest import TenantHandle

ACTIONS = "/api/v1/logs/actions"
BATCH = f"{ACTIONS}/batch"
STATS = "/api/v1/logs/stats"

Record = Callable[..., Awaitable[dict[str, Any]]]
RecordMany = Callable[..., Awaitable[list[dict[str, Any]]]]
Headers = Callable[[list[str]], Awaitable[dict[str, str]]]


@pytest.fixture
def record(client: httpx.AsyncClient) -> Record:
    """POST one action for a tenant (201 expected) and return the stored record."""

    async def post(tenant: TenantHandle, **body: Any) -> dict[str, Any]:
        body = {"action_type": "crm_create", **body}
        response = await client.post(ACTIONS, json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    return post


@pytest.fixture
def record_many(client: httpx.AsyncClient) -> RecordMany:
    """POST a batch for a tenant; return the stored rows as listed, in the order given."""

    async def post(tenant: TenantHandle, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = await client.post(BATCH, json=items, headers=tenant.headers)
        assert response.status_code == 201, response.text
        ids = response.json()["ids"]
        listed = {row["id"]: row for row in await list_all(client, tenant)}
        return [listed[action_id] for action_id in ids]

    return post


async def list_all(
    client: httpx.AsyncClient, tenant: TenantHandle, **params: Any
) -> list[dict[str, Any]]:
    """Every action of a tenant matching `params`, one page of up to 1000."""
    response = await client.get(ACTIONS, params={"limit": 1000, **params}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return list(response.json())


def detail_text(response: httpx.Response) -> str:
    """The error detail as one string (FastAPI-style lists included), for `in` assertions."""
    return str(response.json()["detail"])


async def move_in_time(engine: AsyncEngine, times: dict[str, datetime]) -> None:
    """Set `created_at` of actions directly in the database (the API always stamps now).

    The rollups of the tenants touched are rebuilt, as after any direct change to the rows.
    """
    async with AsyncSession(engine) as session, session.begin():
        tenants = set()
        for action_id, created_at in times.items():
            tenant_id = await session.scalar(
                update(ActionLog)
                .where(ActionLog.id == UUID(action_id))
                .values(created_at=created_at)
                .returning(ActionLog.tenant_id)
            )
            tenants.add(tenant_id)
        for tenant_id in tenants:
            await rollup_rebuild.rebuild(session, tenant_id)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
