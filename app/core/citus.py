"""Distributed PostgreSQL (Citus): distributing the schema, and checking the cluster serves.

The last step of the scale path shards every tenant table by `tenant_id` over the workers of a
Citus cluster. `distribute` (the `actionlog distribute` command) does, on a migrated database,
everything the service then needs, and may be run again at any time (it skips what is done):

- the service role (`DATABASE_ROLE`) may log in on every node: the coordinator opens its
  connections to the workers as the role the service switched to;
- `citus.propagate_set_commands = 'local'` for the database and the role, so that the
  `SET LOCAL app.tenant_id` of each transaction (app/core/tenancy.py) reaches the workers,
  where row-level security reads it;
- the reference and distributed tables, in an order Citus accepts: a foreign key between two
  tenant tables is dropped while they are distributed and made again afterwards, since
  making `tenants` a reference table turns the tables that refer to it into local ones, and
  a local table referring to another blocks distributing either;
- migration 0014's LEAKPROOF marks on the workers, where the shards are read.

`problems` is what the service checks at start on a Citus database (it stops with what to
run), and `unreachable_workers` what `/ready` checks. On a database without Citus, `distribute`
refuses and the checks find nothing to say.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

logger = logging.getLogger("actionlog")
PROPAGATE = "citus.propagate_set_commands"
# Marked by migration 0014 on the database it runs on: the coordinator. The shards are read
# on the workers, whose catalogs need the same marks.
LEAKPROOF_FUNCTIONS = ("pg_catalog.lower(text)", "pg_catalog.textlike(text, text)")


class DistributionError(Exception):
    """`distribute` cannot run here; the message says why in one line."""


@dataclass(frozen=True)
class Layout:
    """What to distribute: reference tables, distributed tables (the co-location anchor
    first), and the foreign keys between distributed tables as (table, name, ADD statement)."""

    reference: Sequence[str]
    distributed: Sequence[str]
    column: str
    foreign_keys: Sequence[tuple[str, str, str]]


async def has_citus(connection: AsyncConnection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    found = await connection.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'citus'"))
    return found is not None


async def distribute(engine: AsyncEngine, layout: Layout, role: str) -> list[str]:
    """Distribute the migrated schema of `engine` (the tables' owner); the steps taken."""
    async with engine.begin() as connection:
        if not await has_citus(connection):
            raise DistributionError(
                "this database has no Citus extension: nothing to distribute "
                "(CREATE EXTENSION citus on every node, and citus_add_node the workers)"
            )
    done = await _prepare_role(engine, role)
    async with engine.begin() as connection:
        done += await _distribute_tables(connection, layout)
    for function in LEAKPROOF_FUNCTIONS:
        await _on_every_node(engine, f"ALTER FUNCTION {function} LEAKPROOF")
    done.append("LEAKPROOF marks of lower(text) and textlike on every node")
    return done


async def _on_every_node(engine: AsyncEngine, statement: str) -> None:
    """Run `statement` on the workers one after the other, then on the coordinator, each in its
    own transaction: the nodes pass a role change on to each other, so two at once (or one
    inside a transaction of the coordinator's) would wait for each other."""
    async with engine.begin() as connection:
        failed = await connection.execute(
            text(
                "SELECT nodename, nodeport, result FROM run_command_on_workers(:command, false) "
                "WHERE NOT success"
            ),
            {"command": statement},
        )
        for name, port, result in failed:
            raise DistributionError(f"on worker {name}:{port}: {statement}: {result}")
    async with engine.begin() as connection:
        await connection.execute(text(statement))


async def _prepare_role(engine: AsyncEngine, role: str) -> list[str]:
    if not role:
        return []
    # Roles are created on the coordinator by migration 0010, and Citus copies them to the
    # workers it knows; a worker added later or a role made before the extension may lack it.
    await _on_every_node(
        engine,
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
        f'CREATE ROLE "{role}" NOSUPERUSER NOBYPASSRLS; END IF; '
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
    )
    await _on_every_node(engine, f'ALTER ROLE "{role}" LOGIN')
    # The role's setting is applied when it logs in; the database's also when the service
    # logs in as another role and switches to it (SET ROLE), as it does by default.
    async with engine.begin() as connection:
        database = await connection.scalar(text("SELECT current_database()"))
        await connection.execute(text(f"ALTER ROLE \"{role}\" SET {PROPAGATE} = 'local'"))
        await connection.execute(text(f"ALTER DATABASE \"{database}\" SET {PROPAGATE} = 'local'"))
    return [f"{role} may log in on every node; {PROPAGATE} = 'local' for it and {database}"]


async def _distribution(connection: AsyncConnection) -> dict[str, str]:
    """The tables Citus already manages, by name: reference, distributed, or local (taken over
    when a table they refer to became a reference table; still to distribute)."""
    rows = await connection.execute(
        text(
            "SELECT logicalrelid::regclass::text, partmethod::text, colocationid, repmodel::text "
            "FROM pg_dist_partition"
        ),
    )
    kinds = {}
    for name, method, _colocation, model in rows:
        kinds[name] = "reference" if method == "n" and model == "t" else (
            "distributed" if method == "h" else "local"
        )  # fmt: skip
    return kinds


async def _constraint_exists(connection: AsyncConnection, table: str, name: str) -> bool:
    found = await connection.scalar(
        text(
            "SELECT 1 FROM pg_constraint WHERE conname = :name AND conrelid = CAST(:t AS regclass)"
        ),
        {"name": name, "t": table},
    )
    return found is not None


async def _distribute_tables(connection: AsyncConnection, layout: Layout) -> list[str]:
    done: list[str] = []
    kinds = await _distribution(connection)
    pending = [t for t in layout.distributed if kinds.get(t) != "distributed"]
    if pending:
        for table, name, _add in layout.foreign_keys:
            await connection.execute(
                text(f'ALTER TABLE "{table}" DROP CONSTRAINT IF EXISTS "{name}"')
            )
    for table in layout.reference:
        if kinds.get(table) != "reference":
            await connection.execute(text("SELECT create_reference_table(:t)"), {"t": table})
            done.append(f"reference table {table}")
    anchor = layout.distributed[0]
    for table in layout.distributed:
        if kinds.get(table) == "distributed":
            continue
        colocate = "none" if table == anchor else anchor
        await connection.execute(
            text("SELECT create_distributed_table(:t, :column, colocate_with => :with)"),
            {"t": table, "column": layout.column, "with": colocate},
        )
        done.append(f"distributed table {table}")
    for table, name, add in layout.foreign_keys:
        if not await _constraint_exists(connection, table, name):
            await connection.execute(text(add))
            done.append(f"foreign key {name}")
    return done


async def problems(engine: AsyncEngine, role: str) -> list[str]:
    """What keeps the service from working on this database's cluster, each with what to run
    (nothing on SQLite, plain PostgreSQL, or a cluster ready to serve). `engine` is the
    service's: its connections are the service role's."""
    if engine.dialect.name != "postgresql":
        return []
    async with engine.connect() as connection:
        if not await has_citus(connection):
            return []
        found = []
        setting = await connection.scalar(text(f"SELECT current_setting('{PROPAGATE}')"))
        if setting != "local":
            found.append(
                f"{PROPAGATE} is '{setting}': the tenant of each transaction would not reach the "
                "workers; run `actionlog distribute`"
            )
        for node in await unreachable_workers(connection):
            found.append(
                f"the service role {role or 'of DATABASE_URL'} cannot connect to worker {node}: "
                "run `actionlog distribute` (it lets the role log in on every node), and give "
                "the coordinator its credentials for the workers (a ~/.pgpass of the "
                "coordinator's server, or citus_update_node_authinfo / pg_dist_authinfo)"
            )
        return found


class ClusterMisconfigured(RuntimeError):
    """The service cannot work on this cluster as it is; the message says what to run."""


async def check_at_start(engine: AsyncEngine, role: str) -> None:
    """Stop the service (ClusterMisconfigured) on a Citus cluster it cannot serve from; a
    database that cannot be reached yet is left to the readiness check."""
    try:
        found = await problems(engine, role)
    except (OSError, SQLAlchemyError) as exc:
        logger.warning("cluster not checked: %s", exc.__class__.__name__)
        return
    if found:
        message = "; ".join(found)
        logger.error("cannot serve: %s", message)
        raise ClusterMisconfigured(message)


async def unreachable_workers(connection: AsyncConnection) -> list[str]:
    """The workers (host:port: why) the connection's role cannot reach (Citus only), each
    given a few seconds: what `/ready` and the start check ask."""
    if not await has_citus(connection):
        return []
    if not connection.in_transaction():
        await connection.begin()
    await connection.execute(text("SET LOCAL citus.node_connection_timeout TO 3000"))
    rows = await connection.execute(
        text(
            "SELECT nodename, nodeport, result FROM run_command_on_workers('SELECT 1') "
            "WHERE NOT success"
        ),
    )
    return [f"{name}:{port}: {result}" for name, port, result in rows]
