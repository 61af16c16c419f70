"""Fixtures: every test runs against real SQLite and real PostgreSQL, built by the migrations.

Each backend gets a fresh database for the test session (a temporary SQLite file; a new
PostgreSQL database, dropped at the end), created by running the Alembic migrations. Tests are
isolated by tenant: every test creates its own tenants, and every query of the service is
scoped to one, so tests cannot see each other's rows. Writes are really committed, as in
production (an outer rollback-only transaction would bypass the commit path under test).

PostgreSQL comes from TEST_DATABASE_URL, else postgres@127.0.0.1:5432/test. When it cannot be
reached its tests are skipped, except under CI=true, where that is a failure.

A third backend, `citus`, runs the files of `CITUS_FILES` on a private Citus cluster (a
coordinator and two workers, tests/citus.py), migrated and distributed as an operator does it,
with row-level security on: `TEST_BACKENDS=citus` selects it (`make test-citus`). Without an
installed Citus its tests are skipped with the way to get one, under CI=true too.
"""

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import citus, migrations
from app.core.config import Settings
from app.core.db import create_engine
from app.main import create_app
from app.models import distribution_layout
from tests import citus as citus_cluster

ADMIN_TOKEN = "test-admin-token-0123456789"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
BACKENDS = os.environ.get("TEST_BACKENDS", "sqlite,postgresql").split(",")
# The core of the HTTP suite, run on the Citus cluster by `make test-citus`.
CITUS_FILES = (
    "tests/actions/test_action_record.py",
    "tests/actions/test_action_ingest.py",
    "tests/actions/test_action_client_ids.py",
    "tests/actions/test_action_idempotency.py",
    "tests/actions/test_action_lifecycle.py",
    "tests/actions/test_action_list.py",
    "tests/actions/test_action_access.py",
    "tests/actions/test_action_export.py",
    "tests/audits/test_audit_record.py",
    "tests/audits/test_audit_batch.py",
    "tests/audits/test_audit_chain.py",
    "tests/audits/test_audit_queries.py",
    "tests/stats/test_stats.py",
    "tests/streams/test_stream_sse.py",
    "tests/alerts/test_alert_delivery.py",
    "tests/retention/test_archives.py",
    "tests/hardening/test_row_level_security.py",
    "tests/test_citus.py",
)


def pg_server_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_PG_URL)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_admin_execute(sql: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(pg_server_url()), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _create_pg_database() -> str:
    name = f"actionlog_test_{uuid.uuid4().hex[:12]}"
    try:
        await _pg_admin_execute(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL unreachable at {pg_server_url()}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return make_url(pg_server_url()).set(database=name).render_as_string(hide_password=False)


async def _drop_pg_database(url: str) -> None:
    name = make_url(url).database
    await _pg_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Citus runs the files of CITUS_FILES only; a test that names its own backends runs on
    those of them that are selected."""
    root = Path(str(config.rootpath))
    kept, dropped = [], []
    for item in items:
        spec = getattr(item, "callspec", None)
        chosen = spec.params.get("backend") if spec is not None else None
        path = Path(str(item.path)).relative_to(root).as_posix() if root else ""
        if chosen is not None and (
            chosen not in BACKENDS or (chosen == "citus" and path not in CITUS_FILES)
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def citus_nodes() -> Iterator[citus_cluster.CitusCluster]:
    """A coordinator and two workers for the test session, stopped at its end."""
    reason = citus_cluster.available()
    if reason:
        pytest.skip(reason)  # under CI=true too: Citus is built by hand, never downloaded
    nodes = citus_cluster.CitusCluster()
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


async def _empty_database(backend: str, directory: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{directory / f'actionlog-{uuid.uuid4().hex[:8]}.db'}"
    if backend == "citus":
        nodes = request.getfixturevalue("citus_nodes")
        return await nodes.create_database(f"actionlog_test_{uuid.uuid4().hex[:12]}")
    return await _create_pg_database()


@pytest.fixture
async def empty_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A new database with no schema at all (on Citus: with the extension), dropped after."""
    url = await _empty_database(backend, tmp_path, request)
    yield url
    if backend == "postgresql":
        await _drop_pg_database(url)


@pytest.fixture(scope="session")
async def database_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A new, migrated database for this backend (on Citus: distributed too), for the whole
    test session."""
    url = await _empty_database(backend, tmp_path_factory.mktemp("db"), request)
    settings = Settings(database_url=url, environment="test")
    engine = create_engine(settings, as_owner=True)
    await migrations.upgrade(engine)
    if backend == "citus":
        await citus.distribute(engine, distribution_layout(), settings.database_role)
    await engine.dispose()
    yield url
    if backend == "postgresql":
        await _drop_pg_database(url)


@pytest.fixture(scope="session")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session app's ARCHIVE_DIR: never the working directory's ./archive."""
    return tmp_path_factory.mktemp("archive")


@pytest.fixture(scope="session")
def settings(database_url: str, archive_dir: Path) -> Settings:
    # Every test client comes from one address: failed-auth throttling is tested on its own
    # (tests/hardening/test_limits.py), not by the many tests that send wrong keys on purpose.
    # The alert loops are off in the tests' own application: alert tests run evaluation and
    # delivery steps themselves, or start a service process with short windows.
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        environment="test",
        log_level="warning",
        archive_dir=archive_dir,
        failed_auth_per_minute=0,
        alerts_enabled=False,
        webhook_allow_private=True,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def engine(app: Any) -> AsyncEngine:
    """An engine of the login role (the tables' owner, outside row-level security), for tests
    that inspect or tamper with rows directly, behind the service's back."""
    return app.state.maintenance_engine  # type: ignore[no-any-return]


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


def first_error(response: httpx.Response) -> str:
    """The first item of a 422 as `field.path: message` (the loc without body/query/path)."""
    item = response.json()["detail"][0]
    return ".".join(str(part) for part in item["loc"][1:]) + ": " + item["msg"]


@dataclass
class TenantHandle:
    id: str
    slug: str
    key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


async def create_tenant(client: httpx.AsyncClient, name: str = "Tenant") -> TenantHandle:
    response = await client.post("/api/v1/admin/tenants", json={"name": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    body = response.json()
    return TenantHandle(body["id"], body["slug"], body["api_key"], body["api_key_id"])


async def create_key(
    client: httpx.AsyncClient, tenant: TenantHandle, scopes: list[str], **extra: Any
) -> str:
    response = await client.post(
        f"/api/v1/admin/tenants/{tenant.id}/keys",
        json={"name": "scoped", "scopes": scopes, **extra},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


@pytest.fixture
async def tenant(client: httpx.AsyncClient) -> TenantHandle:
    """A fresh tenant with an all-scopes key."""
    return await create_tenant(client, "Tenant A")


@pytest.fixture
async def other_tenant(client: httpx.AsyncClient) -> TenantHandle:
    """A second tenant, for isolation tests."""
    return await create_tenant(client, "Tenant B")


@pytest.fixture
def scoped_headers(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> Callable[[list[str]], Awaitable[dict[str, str]]]:
    """Headers with a key of `tenant` holding only the given scopes."""

    async def make(scopes: list[str]) -> dict[str, str]:
        return {"X-API-Key": await create_key(client, tenant, scopes)}

    return make
