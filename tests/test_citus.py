"""The service on a real Citus cluster: `actionlog distribute`, migrations after it, and the
checks that stop the service or fail `/ready` when the cluster cannot serve it.

The cluster is the test session's (a coordinator and two workers, tests/citus.py), whose
database conftest.py migrated and distributed; the HTTP suite's core files run on it too
(`CITUS_FILES`, `make test-citus`). The refusal on a database without Citus runs on plain
PostgreSQL.
"""

import asyncio
import shutil
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from app.core import citus, migrations
from app.core.config import Settings
from app.core.db import create_engine
from app.main import create_app
from app.models import REFERENCE_TABLES, distributed_tables, distribution_layout
from tests.citus import CitusCluster
from tests.test_cli import actionlog, one_error_line

on_citus = pytest.mark.parametrize("backend", ["citus"], indirect=True)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _fetch(url: str, query: str, *args: Any) -> list[Any]:
    connection = await asyncpg.connect(_dsn(url), timeout=30)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


@on_citus
async def test_every_table_is_distributed_by_tenant_or_a_reference_table(
    database_url: str,
) -> None:
    rows = await _fetch(
        database_url,
        "SELECT logicalrelid::regclass::text AS name, partmethod::text AS method, colocationid "
        "FROM pg_dist_partition",
    )
    kinds = {row["name"]: row["method"] for row in rows}
    assert {name: kinds.get(name) for name in REFERENCE_TABLES} == dict.fromkeys(
        REFERENCE_TABLES, "n"
    )
    assert {name: kinds.get(name) for name in distributed_tables()} == dict.fromkeys(
        distributed_tables(), "h"
    )
    colocated = {row["colocationid"] for row in rows if row["method"] == "h"}
    assert len(colocated) == 1
    keys = await _fetch(
        database_url,
        "SELECT conname FROM pg_constraint WHERE conrelid = 'alert_states'::regclass "
        "AND contype = 'f' AND confrelid = 'alert_rules'::regclass",
    )
    assert [row["conname"] for row in keys] == ["fk_alert_states_tenant_id_alert_rules"]


@on_citus
async def test_distribute_again_changes_no_table_and_marks_every_node(database_url: str) -> None:
    result = await actionlog(database_url, "distribute")
    assert result.code == 0, result.err
    assert "distributed table" not in result.out and "reference table" not in result.out
    marks = await _fetch(
        database_url,
        "SELECT success, result FROM run_command_on_workers($$SELECT string_agg("
        "proleakproof::text, ',') FROM pg_proc WHERE oid IN ('pg_catalog.lower(text)'"
        "::regprocedure, 'pg_catalog.textlike(text, text)'::regprocedure)$$)",
    )
    assert [(row["success"], row["result"]) for row in marks] == [(True, "true,true")] * 2
    logins = await _fetch(
        database_url,
        "SELECT result FROM run_command_on_workers($$SELECT rolcanlogin FROM pg_roles "
        "WHERE rolname = 'actionlog_app'$$)",
    )
    assert [row["result"] for row in logins] == ["t", "t"]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_distribute_refuses_a_database_without_citus(database_url: str) -> None:
    line = one_error_line(await actionlog(database_url, "distribute"))
    assert "no Citus extension" in line


PROBE_MIGRATION = '''"""A probe: a column and an index on a distributed table.

Revision ID: 9999_citus_probe
Revises: {head}
"""

from alembic import op
import sqlalchemy as sa

revision = "9999_citus_probe"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("action_logs", sa.Column("probe_note", sa.String(40), nullable=True))
    op.create_index("ix_action_logs_tenant_id_probe_note", "action_logs",
                    ["tenant_id", "probe_note"])


def downgrade() -> None:
    op.drop_index("ix_action_logs_tenant_id_probe_note", table_name="action_logs")
    op.drop_column("action_logs", "probe_note")
'''


@on_citus
async def test_a_new_migration_reaches_every_shard(database_url: str, tmp_path: Path) -> None:
    """`actionlog migrate` after `distribute`: a column and an index land on every shard."""
    scripts = tmp_path / "alembic"
    shutil.copytree(migrations.ROOT / "alembic", scripts)
    head = (await _fetch(database_url, "SELECT version_num FROM alembic_version"))[0][0]
    (scripts / "versions" / "9999_citus_probe.py").write_text(PROBE_MIGRATION.format(head=head))
    engine = create_engine(Settings(database_url=database_url), as_owner=True)

    def run(connection: Connection, revision: str, up: bool) -> None:
        config = migrations.alembic_config()
        config.set_main_option("script_location", str(scripts))
        config.attributes["connection"] = connection
        (command.upgrade if up else command.downgrade)(config, revision)

    shards = (
        "SELECT result FROM run_command_on_shards('action_logs', $$SELECT count(*) FROM "
        "pg_indexes WHERE tablename = '%s' AND indexname LIKE 'ix_action_logs_tenant_id_probe_"
        "note%%'$$)"
    )
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run, "9999_citus_probe", True)
        results = [row["result"] for row in await _fetch(database_url, shards)]
        assert results and set(results) == {"1"}
        async with engine.begin() as connection:
            count = await connection.scalar(
                text(
                    "SELECT count(*) FROM run_command_on_shards('action_logs', $$SELECT "
                    "probe_note FROM %s LIMIT 0$$) WHERE success"
                )
            )
        assert count == len(results)
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(run, head, False)
        await engine.dispose()
    assert {row["result"] for row in await _fetch(database_url, shards)} == {"0"}


async def _on_workers(database_url: str, statement: str) -> None:
    rows = await _fetch(
        database_url, "SELECT success, result FROM run_command_on_workers($1, false)", statement
    )
    assert all(row["success"] for row in rows), rows


@on_citus
async def test_the_service_stops_when_its_role_cannot_reach_the_workers(
    database_url: str, settings: Settings
) -> None:
    await _on_workers(database_url, "ALTER ROLE actionlog_app NOLOGIN")
    try:
        application = create_app(settings)
        with pytest.raises(citus.ClusterMisconfigured, match="run `actionlog distribute`"):
            async with application.router.lifespan_context(application):
                pass
    finally:
        engine = create_engine(settings, as_owner=True)
        await citus.distribute(engine, distribution_layout(), settings.database_role)
        await engine.dispose()
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        pass


@on_citus
async def test_ready_fails_while_a_worker_is_unreachable(
    settings: Settings, citus_nodes: CitusCluster
) -> None:
    application = create_app(settings)
    transport = httpx.ASGITransport(app=application)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        assert (await client.get("/ready")).status_code == 200
        worker = citus_nodes.workers[1]
        await asyncio.to_thread(worker.stop)
        try:
            response = await client.get("/ready")
            assert response.status_code == 503
            assert f":{worker.port}" in response.json()["detail"]
        finally:
            await asyncio.to_thread(worker.start)
        deadline = asyncio.get_running_loop().time() + 30
        while (await client.get("/ready")).status_code != 200:
            assert asyncio.get_running_loop().time() < deadline, "never ready again"
            await asyncio.sleep(0.2)
