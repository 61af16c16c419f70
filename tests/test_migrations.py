"""The one migration history builds, tears down and rebuilds the schema on both engines."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from app.core import migrations
from app.core.config import Settings
from app.core.db import create_engine
from app.models import Base

# Indexes for lookups that happen before a tenant is known, or across all tenants.
NOT_TENANT_QUERIES = {
    "uq_api_keys_prefix",  # authentication finds the key, and so the tenant
    "ix_idempotency_keys_expires_at",  # expiry sweep over every tenant
    "ix_alert_deliveries_status_next",  # the webhook sender claims due deliveries of every tenant
}


def _schema_diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def test_upgrade_downgrade_upgrade_matches_models(empty_database_url: str) -> None:
    engine = create_engine(Settings(database_url=empty_database_url))
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
    engine = create_engine(Settings(database_url=empty_database_url))
    try:
        await migrations.upgrade(engine)

        def check(connection: Connection) -> None:
            inspector = inspect(connection)
            for table in _tables(connection) - {"tenants"}:
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
