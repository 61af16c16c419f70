"""The one migration history builds, tears down and rebuilds the schema on both engines."""

import warnings
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, select
from sqlalchemy.engine import Connection

from app.actions.models import (
    action_failure_rollups,
    action_logs,
    action_rollups,
    action_user_rollups,
)
from app.core import migrations
from app.core.config import Settings
from app.core.db import create_engine
from app.models import AuditLog, Base, Tenant, in_schema_of

# Indexes for lookups that happen before a tenant is known, or across all tenants.
NOT_TENANT_QUERIES = {
    "uq_api_keys_prefix",  # authentication finds the key, and so the tenant
    "ix_idempotency_keys_expires_at",  # expiry sweep over every tenant
    "ix_alert_deliveries_status_next",  # the webhook sender claims due deliveries of every tenant
}

# Tables of the service itself, not of a tenant (Citus: reference tables).
NOT_TENANT_TABLES = {"tenants", "audit_signing_keys", "secret_keys"}


def _schema_diff(connection: Connection) -> list[object]:
    options = {"compare_type": True, "include_object": in_schema_of(connection.dialect.name)}
    context = MigrationContext.configure(connection, opts=options)
    with warnings.catch_warnings():  # SQLite cannot reflect expression indexes (PostgreSQL's)
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def test_upgrade_downgrade_upgrade_matches_models(empty_database_url: str) -> None:
    engine = create_engine(Settings(database_url=empty_database_url), as_owner=True)
    try:
        await migrations.upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == set(Base.metadata.tables)
        await migrations.downgrade(engine, "base")
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == set()
        await migrations.upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_schema_diff) == []
    finally:
        await engine.dispose()


async def test_every_tenant_table_and_index_leads_with_tenant_id(
    empty_database_url: str,
) -> None:
    engine = create_engine(Settings(database_url=empty_database_url), as_owner=True)
    try:
        await migrations.upgrade(engine)

        def check(connection: Connection) -> None:
            inspector = inspect(connection)
            for table in _tables(connection) - NOT_TENANT_TABLES:
                columns = {c["name"]: c for c in inspector.get_columns(table)}
                assert columns["tenant_id"]["nullable"] is False, table
                for index in inspector.get_indexes(table):
                    if index["name"] in NOT_TENANT_QUERIES:
                        continue
                    first = index["column_names"][0]
                    assert first == "tenant_id", (table, index["name"])

        async with engine.connect() as connection:
            await connection.run_sync(check)
    finally:
        await engine.dispose()


def test_history_is_linear() -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config())
    assert len(script.get_heads()) == 1
    assert len(list(script.walk_revisions())) >= 1


async def test_tenant_first_keys_migrate_tables_holding_rows(empty_database_url: str) -> None:
    """0004 swaps the keys of action_logs and audit_logs to (tenant_id, id), keeping the rows;
    0007 counts existing rows into the user rollups, 0011 into minute and failure rollups, 0013
    into the all-time user rollups."""
    engine = create_engine(Settings(database_url=empty_database_url), as_owner=True)
    tenant_id, action_id, audit_id = uuid4(), uuid4(), uuid4()
    now = datetime.now(UTC)
    try:
        await migrations.upgrade(engine, "0003")
        async with engine.begin() as connection:
            await connection.execute(
                insert(Tenant.__table__).values(
                    id=tenant_id, name="T", slug=f"t-{tenant_id.hex[:8]}", created_at=now,
                    updated_at=now,
                )
            )  # fmt: skip
            await connection.execute(
                insert(action_logs).values(
                    id=action_id, tenant_id=tenant_id, action_type="a", status="failure",
                    user_id="u1",
                    request_payload={}, metadata={}, steps=[], created_at=now, updated_at=now,
                )
            )  # fmt: skip
            await connection.execute(
                insert(AuditLog.__table__).values(
                    id=audit_id, tenant_id=tenant_id, sequence=1, action="create",
                    resource_type="r", resource_id="1", changes={}, metadata={},
                    created_at=now, prev_hash="0" * 64, hash="1" * 64,
                )
            )  # fmt: skip

        async def keys_and_rows() -> tuple[list[list[str]], list[Any]]:
            async with engine.connect() as connection:

                def keys(sync: Connection) -> list[list[str]]:
                    inspector = inspect(sync)
                    return [
                        inspector.get_pk_constraint(table)["constrained_columns"]
                        for table in ("action_logs", "audit_logs")
                    ]

                found = await connection.run_sync(keys)
                rows = [
                    (await connection.execute(select(action_logs.c.id))).scalars().all(),
                    (await connection.execute(select(AuditLog.__table__.c.id))).scalars().all(),
                ]
                return found, rows

        await migrations.upgrade(engine, "0006_citus_keys")
        found, rows = await keys_and_rows()
        assert found == [["tenant_id", "id"], ["tenant_id", "id"]]
        assert rows == [[action_id], [audit_id]]
        await migrations.upgrade(engine, "0007_user_rollups")  # counts the rows in
        async with engine.connect() as connection:
            users = (await connection.execute(select(action_user_rollups))).all()
        found_users = sorted(
            (u.period, u.user_id, u.total, u.failed, u.last_action_id) for u in users
        )
        assert found_users == [(3600, "u1", 1, 1, action_id), (86400, "u1", 1, 1, action_id)]
        await migrations.upgrade(engine)  # 0011: minute and failure rollups; 0013: all time
        async with engine.connect() as connection:
            periods = (await connection.execute(select(action_rollups.c.period))).scalars()
            failures = (await connection.execute(select(action_failure_rollups))).all()
            users = (await connection.execute(select(action_user_rollups))).all()
        assert sorted((u.period, u.total, u.failed, u.last_action_id) for u in users) == [
            (period, 1, 1, action_id) for period in (0, 3600, 86400)
        ]
        assert [u.start for u in users if u.period == 0] == [datetime(1970, 1, 1, tzinfo=UTC)]
        assert list(periods) == [60]  # hours and days: not counted, the row went in by SQL
        assert sorted((f.period, f.action_type, f.count, f.example_id) for f in failures) == [
            (period, "a", 1, action_id) for period in (60, 3600, 86400)
        ]
        await migrations.downgrade(engine, "0003")
        found, rows = await keys_and_rows()
        assert found == [["id"], ["id"]]
        assert rows == [[action_id], [audit_id]]
    finally:
        await engine.dispose()
