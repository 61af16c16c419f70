"""Row-level security, the second wall: on PostgreSQL the database itself keeps tenants apart.

The service's connections are `actionlog_app`, which owns no table; every tenant table (found
from the metadata) has a forced policy on `app.tenant_id`. These tests query as that role with
no tenant filter at all, as a forgetful query would: only the setting decides what is seen.
(The rest of the suite, run on PostgreSQL, shows that every path of the service sets it.)
"""

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from starlette.requests import Request

from app.actions.models import ACTION_COLUMNS, action_logs
from app.actions.repository import insert_actions
from app.actions.schemas import ActionCreate
from app.core import migrations
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, get_read_session, get_session
from app.core.tenancy import bind_request_tenant, set_tenant
from app.models import REFERENCE_TABLES, Base
from tests.conftest import TenantHandle

ROLE = "actionlog_app"
ACTIONS = "/api/v1/logs/actions"
AUDITS = "/api/v1/logs/audits"
TENANT_TABLES = sorted(
    name
    for name, table in Base.metadata.tables.items()
    if "tenant_id" in table.c and name not in REFERENCE_TABLES
)


@pytest.fixture(autouse=True)
def _postgresql_only(backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("row-level security is PostgreSQL's (SQLite has no roles)")


async def _count(connection: AsyncConnection, table: str, tenant: UUID | None = None) -> int:
    where = "" if tenant is None else f" WHERE tenant_id = '{tenant}'"
    return int((await connection.execute(text(f'SELECT count(*) FROM "{table}"{where}'))).scalar())


async def _record(client: httpx.AsyncClient, tenant: TenantHandle, n: int) -> None:
    for i in range(n):
        body = {"action_type": "rls", "action_name": f"{tenant.slug}-{i}"}
        assert (await client.post(ACTIONS, json=body, headers=tenant.headers)).status_code == 201
    body = {"action": "create", "resource_type": "doc", "resource_id": tenant.slug}
    assert (await client.post(AUDITS, json=body, headers=tenant.headers)).status_code == 201


@pytest.fixture
async def service_engine(app: Any) -> AsyncEngine:
    """The service's own engine: its connections are the service role."""
    return app.state.engine  # type: ignore[no-any-return]


class TestPolicies:
    async def test_every_tenant_table_is_forced_and_has_the_policy(
        self, engine: AsyncEngine
    ) -> None:
        assert "action_logs" in TENANT_TABLES and "stream_events" in TENANT_TABLES
        query = text(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, p.qual, p.with_check"
            " FROM pg_class c LEFT JOIN pg_policies p ON p.tablename = c.relname"
            " AND p.schemaname = current_schema()"
            " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
        )
        async with engine.connect() as connection:
            rows = {row.relname: row for row in await connection.execute(query)}
        for name in TENANT_TABLES:
            row = rows[name]
            assert row.relrowsecurity and row.relforcerowsecurity, name
            for expression in (row.qual, row.with_check):
                assert "current_setting('app.tenant_id'" in (expression or ""), name
        for name in REFERENCE_TABLES:
            assert not rows[name].relrowsecurity and rows[name].qual is None, name

    async def test_the_service_role_owns_nothing_and_bypasses_nothing(
        self, service_engine: AsyncEngine
    ) -> None:
        async with service_engine.connect() as connection:
            assert await connection.scalar(text("SELECT current_user")) == ROLE
            role = (
                await connection.execute(
                    text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
                )
            ).one()
            assert (role.rolsuper, role.rolbypassrls) == (False, False)
            owned = text("SELECT count(*) FROM pg_tables WHERE tableowner = current_user")
            assert await connection.scalar(owned) == 0
            # and it cannot take the policies away
            with pytest.raises(DBAPIError, match="must be owner"):
                await connection.execute(text("ALTER TABLE action_logs DISABLE ROW LEVEL SECURITY"))


class TestIsolation:
    async def test_a_tenant_sees_only_its_rows_and_none_sees_nothing(
        self,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        other_tenant: TenantHandle,
        service_engine: AsyncEngine,
        engine: AsyncEngine,
    ) -> None:
        await _record(client, tenant, 3)
        await _record(client, other_tenant, 2)
        mine, theirs = UUID(tenant.id), UUID(other_tenant.id)
        async with engine.connect() as owner:  # behind the service's back: every row
            assert await _count(owner, "action_logs", theirs) == 2
        async with service_engine.connect() as connection:
            await set_tenant(connection, mine)
            assert await _count(connection, "action_logs", mine) == 3
            assert await _count(connection, "action_logs", theirs) == 0
            assert await _count(connection, "audit_logs", theirs) == 0
            assert await _count(connection, "stream_events", theirs) == 0
            # no filter at all: only this tenant's rows, in every tenant table
            for table in TENANT_TABLES:
                assert await _count(connection, table) == await _count(connection, table, mine)
        async with service_engine.connect() as connection:  # no setting: nothing at all
            for table in TENANT_TABLES:
                assert await _count(connection, table) == 0, table
        async with service_engine.connect() as connection:  # an empty one: the same
            await connection.execute(text("SELECT set_config('app.tenant_id', '', true)"))
            assert await _count(connection, "action_logs") == 0

    async def test_writing_another_tenants_row_is_refused(
        self, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle,
        service_engine: AsyncEngine,
    ) -> None:  # fmt: skip
        await _record(client, other_tenant, 1)
        mine, theirs = UUID(tenant.id), UUID(other_tenant.id)
        row = _row(theirs)
        async with service_engine.connect() as connection:
            await set_tenant(connection, mine)
            with pytest.raises(DBAPIError, match="row-level security"):
                await connection.execute(action_logs.insert().values(**row))
        async with service_engine.connect() as connection:  # nor without a tenant
            with pytest.raises(DBAPIError, match="row-level security"):
                await connection.execute(action_logs.insert().values(**row))
        async with service_engine.begin() as connection:  # and another's rows are out of reach
            await set_tenant(connection, mine)
            changed = await connection.execute(
                action_logs.update().where(action_logs.c.tenant_id == theirs).values(user_id="x")
            )
            assert changed.rowcount == 0
            gone = await connection.execute(
                action_logs.delete().where(action_logs.c.tenant_id == theirs)
            )
            assert gone.rowcount == 0

    async def test_copy_is_refused_under_the_policy(
        self, tenant: TenantHandle, service_engine: AsyncEngine
    ) -> None:
        """Why the service inserts with INSERT: PostgreSQL refuses COPY FROM on such a table."""
        async with service_engine.connect() as connection:
            await set_tenant(connection, UUID(tenant.id))
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            row = _row(UUID(tenant.id))
            record = tuple(
                "[]" if isinstance(row.get(name), list) else row.get(name)
                for name in ACTION_COLUMNS
            )
            with pytest.raises(asyncpg.FeatureNotSupportedError, match="row-level security"):
                await driver.copy_records_to_table(
                    "action_logs", records=[record], columns=ACTION_COLUMNS
                )

    async def test_a_group_commit_of_two_tenants_stores_each_under_its_own(
        self, app: Any, tenant: TenantHandle, other_tenant: TenantHandle,
        service_engine: AsyncEngine, engine: AsyncEngine,
    ) -> None:  # fmt: skip
        mine, theirs = UUID(tenant.id), UUID(other_tenant.id)
        builder = app.state.row_builder
        cleaner = builder.cleaner()

        def rows(n: int) -> list[dict[str, Any]]:
            now = app.state.row_builder.clock()
            return [
                builder.row(ActionCreate(action_type="group"), now, cleaner, ()) for _ in range(n)
            ]

        heads = text("SELECT tenant_id, seq FROM stream_heads WHERE tenant_id IN (:a, :b)")
        async with engine.connect() as owner:
            before = dict((await owner.execute(heads, {"a": mine, "b": theirs})).all())
        async with service_engine.begin() as connection:
            await insert_actions(connection, [(mine, rows(2)), (theirs, rows(3)), (mine, rows(1))])
        async with engine.connect() as owner:
            assert await _count(owner, "action_logs", mine) == 3
            assert await _count(owner, "action_logs", theirs) == 3
            after = dict((await owner.execute(heads, {"a": mine, "b": theirs})).all())
            assert {t: after[t] - before.get(t, 0) for t in after} == {mine: 3, theirs: 3}


def _row(tenant_id: UUID) -> dict[str, Any]:
    from app.core.db import new_id, utcnow

    now = utcnow()
    return {
        "tenant_id": tenant_id,
        "id": new_id(),
        "action_type": "forged",
        "status": "success",
        "steps": [],
        "created_at": now,
        "updated_at": now,
    }


def _request(app: Any) -> Request:
    return Request({"type": "http", "app": app, "headers": [], "method": "GET", "path": "/"})


class TestRequestSessions:
    async def test_a_request_session_is_the_service_role_with_the_keys_tenant(
        self, app: Any, tenant: TenantHandle
    ) -> None:
        for dependency in (get_session, get_read_session):
            request = _request(app)
            sessions: AsyncIterator[AsyncSession] = dependency(request)
            session = await anext(sessions)
            bind_request_tenant(request.state, UUID(tenant.id))  # as authentication does
            row = (
                await session.execute(
                    text("SELECT current_user, current_setting('app.tenant_id', true)")
                )
            ).one()
            assert tuple(row) == (ROLE, tenant.id), dependency.__name__
            with pytest.raises(StopAsyncIteration):
                await anext(sessions)

    async def test_a_pooled_connection_keeps_no_tenant_after_a_read(
        self, settings: Settings, tenant: TenantHandle
    ) -> None:
        """Reads are transactions: their tenant ends with them, before the connection is
        pooled again."""
        engine = create_engine(settings.model_copy(update={"db_pool_size": 1}))
        try:
            reads = create_sessionmaker(engine)
            request = _request(SimpleNamespace(state=SimpleNamespace(read_sessionmaker=reads)))
            sessions = get_read_session(request)
            session = await anext(sessions)
            bind_request_tenant(request.state, UUID(tenant.id))
            assert await session.scalar(select(func.current_setting("app.tenant_id"))) == tenant.id
            with pytest.raises(StopAsyncIteration):
                await anext(sessions)
            async with engine.connect() as connection:  # the same, only, pooled connection
                setting = text("SELECT current_setting('app.tenant_id', true)")
                assert (await connection.scalar(setting)) in ("", None)
                assert await _count(connection, "action_logs") == 0
        finally:
            await engine.dispose()


async def test_downgrade_removes_the_policies_and_grants(empty_database_url: str) -> None:
    engine = create_engine(Settings(database_url=empty_database_url), as_owner=True)
    secured = text("SELECT count(*) FROM pg_class WHERE relrowsecurity AND relkind = 'r'")
    granted = text(
        "SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = :role"
    )
    try:
        await migrations.upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.scalar(secured) == len(TENANT_TABLES)
            assert await connection.scalar(granted, {"role": ROLE}) > 0
        await migrations.downgrade(engine, "0009_retention")
        async with engine.connect() as connection:
            assert await connection.scalar(secured) == 0
            assert await connection.scalar(text("SELECT count(*) FROM pg_policies")) == 0
            assert await connection.scalar(granted, {"role": ROLE}) == 0
        await migrations.upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.scalar(secured) == len(TENANT_TABLES)
    finally:
        await engine.dispose()
