"""The tenant of each transaction, for PostgreSQL's row-level security: the second wall.

Every repository is built for one tenant and filters by it. Row-level security makes the
database enforce the same thing, so that a query that forgot its filter still returns nothing
of another tenant: on PostgreSQL the service's connections switch to `DATABASE_ROLE`
(`actionlog_app`, created by migration 0010: it owns no table and does not bypass policies),
and every tenant table carries the policy

    tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid

for reading and writing alike. A connection without the setting (or with an empty one) sees
no row of any tenant table and cannot write one; the reference tables (tenants, api_keys,
audit_signing_keys) are outside the policy, since a key is looked up before its tenant is known.

This module is the one place that sets `app.tenant_id`, once per transaction, always with
`SET LOCAL app.tenant_id = '<uuid>'` (a UUID, formatted into the statement since SET takes no
parameter). Never a function call such as `set_config`, and never on a session or outside a
transaction: on a distributed PostgreSQL (Citus) only a `SET LOCAL` is carried to the workers
(with `citus.propagate_set_commands = 'local'`, which `actionlog distribute` sets), and only
for the transaction it belongs to. The same statement is what every engine runs.

- `set_tenant(connection, tenant_id)`: for Core connections, beginning their transaction if
  none; a group commit calls it again before each tenant's rows.
- A session carries its tenant in `session.info`: `tenant_session(sessionmaker, tenant_id)`
  for background work, and for requests the holder that authentication fills
  (`bind_request_tenant`), read when the session's transaction begins, after the
  dependencies ran. The session's `after_begin` hook then sets it. Read sessions are short
  transactions too (rolled back at the end), so that reads carry their tenant as writes do.
- A connection in autocommit has no transaction to hold the setting: a tenant set on one is
  an error (`TenantOutsideTransaction`), never a setting that outlives the statement.

What stays the login role (engines built `as_owner`): migrations, the CLI (the operator's
tool, as `migrate` is), and the cross-tenant queues of background work, on a small
maintenance pool: claiming due webhook deliveries, finding tenants with alert rules, pruning
old stream events, the operator's every-tenant archive listing. What they then do for one
tenant runs as the service role under that tenant's setting. docs/security.md, "Row-level security".

SQLite has neither roles nor policies: everything here is a no-op there.
"""

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.util import await_only

SETTING = "app.tenant_id"
logger = logging.getLogger("actionlog")

_INFO = "actionlog.tenant"  # session.info: the TenantSlot of the session


class TenantOutsideTransaction(RuntimeError):
    """A tenant was set on a connection in autocommit: no transaction would hold it."""


def set_local(tenant_id: UUID) -> str:
    """The statement that makes `tenant_id` the tenant of the current transaction."""
    return f"SET LOCAL {SETTING} = '{UUID(str(tenant_id))}'"  # a UUID: nothing else gets in


class TenantSlot:
    """The tenant a session works for; filled later for a request (by its authentication)."""

    __slots__ = ("tenant_id",)

    def __init__(self, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id


class TenantSession(Session):
    """The service's sessions: they set their tenant when a transaction begins."""


DURABLE = "SET LOCAL synchronous_commit TO on"


def _apply(connection: Connection, tenant_id: UUID, durable: bool = False) -> None:
    """Set the tenant of the connection's transaction, beginning it if none; `durable` also
    makes its commit wait for the WAL flush whatever the server's default (in the same
    round trip)."""
    if connection.dialect.name != "postgresql":
        return
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        raise TenantOutsideTransaction("a tenant statement outside a transaction")
    statement = f"{DURABLE}; {set_local(tenant_id)}" if durable else set_local(tenant_id)
    adapted = connection.connection.dbapi_connection
    start = getattr(adapted, "_start_transaction", None)
    if start is None or adapted is None:  # another driver: through the usual path
        if durable:
            connection.exec_driver_sql(DURABLE)
        connection.exec_driver_sql(set_local(tenant_id))
        return
    # asyncpg: SQLAlchemy's adapter begins the driver's transaction at its first statement,
    # and prepares every statement it runs; one per tenant would crowd the statements that
    # are reused out of its cache. So the transaction is begun here, and the SET sent on the
    # driver as a simple query: one round trip, nothing prepared.
    if adapted._transaction is None:
        await_only(start())
    await_only(adapted.driver_connection.execute(statement))


def _session_began(session: Session, _transaction: SessionTransaction, connection: Any) -> None:
    slot = session.info.get(_INFO)
    if slot is not None and slot.tenant_id is not None:
        _apply(connection, slot.tenant_id)


event.listen(TenantSession, "after_begin", _session_began)


async def set_tenant(
    connection: AsyncConnection, tenant_id: UUID, *, durable: bool = False
) -> None:
    """Make `tenant_id` the tenant of the connection's transaction (beginning one if none).

    `durable`: the transaction writes what will be acknowledged, so its commit waits for the
    WAL flush whatever the server's `synchronous_commit` (sent with the tenant, one round trip).
    """
    if connection.dialect.name == "postgresql":
        await connection.run_sync(_apply, tenant_id, durable)


@contextlib.asynccontextmanager
async def tenant_connection(engine: AsyncEngine, tenant_id: UUID) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction of the tenant's, rolled back at the end (for reads)."""
    async with engine.connect() as connection:
        await set_tenant(connection, tenant_id)
        yield connection


@contextlib.asynccontextmanager
async def tenant_transaction(
    engine: AsyncEngine, tenant_id: UUID
) -> AsyncIterator[AsyncConnection]:
    """A transaction of the tenant's, committed at the end unless it raises."""
    async with engine.begin() as connection:
        await set_tenant(connection, tenant_id)
        yield connection


def tenant_session(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: UUID | None
) -> AsyncSession:
    """A session whose every transaction is the tenant's (None: of no tenant)."""
    return sessionmaker(info={_INFO: TenantSlot(tenant_id)})


async def use_tenant(session: AsyncSession, tenant_id: UUID) -> None:
    """From now on the session works for this tenant: in its current transaction and later
    ones (an operator's request that acts on a tenant it names, a tenant just created)."""
    slot = session.info.get(_INFO)
    if slot is None:
        slot = session.info[_INFO] = TenantSlot()
    if slot.tenant_id == tenant_id and session.in_transaction():
        return  # set when the transaction began
    slot.tenant_id = tenant_id
    if session.in_transaction():
        await session.run_sync(lambda sync: _apply(sync.connection(), tenant_id))


def request_slot(state: Any) -> TenantSlot:
    """The tenant holder of a request (`request.state`), created on first use."""
    slot = getattr(state, "tenant_slot", None)
    if slot is None:
        slot = state.tenant_slot = TenantSlot()
    assert isinstance(slot, TenantSlot)
    return slot


def request_session(sessionmaker: async_sessionmaker[AsyncSession], state: Any) -> AsyncSession:
    """A request's session: its tenant is the one authentication binds (`bind_request_tenant`)."""
    return sessionmaker(info={_INFO: request_slot(state)})


def bind_request_tenant(state: Any, tenant_id: UUID) -> None:
    """The request (`request.state`) works for this tenant, as its key says."""
    request_slot(state).tenant_id = tenant_id


async def warn_unless_bypassing(engine: AsyncEngine) -> None:
    """Log a warning when the login role (the cross-tenant maintenance's) is held by the
    policies: webhook deliveries, alert rules and stream pruning would then find nothing."""
    query = text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
    try:
        async with engine.connect() as connection:
            bypasses = await connection.scalar(query)
    except Exception as exc:  # the database may still be starting: not this check's business
        logger.warning("login role not checked: %s", exc.__class__.__name__)
        return
    if not bypasses:
        logger.warning(
            "the login role of DATABASE_URL is neither superuser nor BYPASSRLS: row-level "
            "security hides every tenant from the cross-tenant maintenance (webhook deliveries, "
            "alert evaluation, stream pruning); grant it BYPASSRLS"
        )


def _switch_role(role: str) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.run_async(lambda driver: driver.execute(f'SET ROLE "{role}"'))

    return on_connect


def install(engine: AsyncEngine, role: str | None) -> None:
    """Make a PostgreSQL engine's connections `role` (if any)."""
    if engine.dialect.name == "postgresql" and role:
        event.listen(engine.sync_engine, "connect", _switch_role(role))
