"""Database plumbing: declarative base, portable column types, engine and session factory.

PostgreSQL (asyncpg) is the production engine and SQLite (aiosqlite) the embedded default; the
column types below make both store the same thing: JSONB on PostgreSQL, timezone-aware UTC
timestamps everywhere, and UUIDs in their native form where the engine has one.
"""

import contextlib
import functools
import json
import os
import random
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from fastapi import Request
from sqlalchemy import JSON, DateTime, Executable, MetaData, Row, Table, event, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB, asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from app.core import tenancy
from app.core.config import Settings
from app.core.state import core_state

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always stored and returned as timezone-aware UTC.

    SQLite has no timezone type; this keeps every engine's values comparable and ordered.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        # asyncpg returns timestamptz values as aware datetimes in UTC already: nothing to do
        # for each of the many timestamps a listing reads.
        if dialect.name == "postgresql":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


_random = random.Random(os.urandom(32))


def new_id() -> UUID:
    """A time-ordered UUID, version 7 (RFC 9562): new rows land at the right edge of the index.

    48 bits of Unix milliseconds, then 74 random bits. Ids need to be unique, not secret, so
    the bits come from a generator initialised once from the OS instead of a system call per id.
    """
    value = (time.time_ns() // 1_000_000) << 80 | _random.getrandbits(80)
    value &= ~(0xF000 << 64) & ~(0xC << 60)  # clear the version and variant bits
    return UUID(int=value | 0x7000 << 64 | 0x8 << 60)


def upsert_insert(dialect_name: str, table: Any) -> Any:
    """`INSERT` of `table` with `ON CONFLICT` support, in the dialect of the connection.

    Both engines spell upserts the same way, but SQLAlchemy keeps a construct per dialect.
    """
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return insert(table)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def json_text(value: Any) -> str:
    """JSON column values as text: orjson, or the standard library for integers beyond 64 bits.

    Reading stays with the standard library, which keeps big integers exact.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


async def insert_values(
    connection: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[dict[str, Any]],
    *,
    upsert: Any = None,
) -> None:
    """INSERT `rows` into `table` as multi-row VALUES whose values are bind parameters.

    How the write paths insert many rows at once, on every engine. On PostgreSQL the statement
    goes to the driver directly, its values encoded by asyncpg (JSON columns as JSON text,
    None as NULL), at most 32,767 parameters per statement: none of the per-value work of the
    ORM's or Core's executemany. Not COPY, nor an INSERT … SELECT from a set-returning
    function such as `json_populate_recordset`: row-level security refuses a COPY, and a
    distributed PostgreSQL (Citus) runs such an INSERT … SELECT as one. A multi-row VALUES
    of one tenant's rows is one statement routed to that tenant's shard.

    `upsert`, an `INSERT … ON CONFLICT DO UPDATE` of `table` built once (with no parameter in
    its DO UPDATE), makes it an upsert: the same multi-row VALUES followed by that statement's
    conflict clause. The rows must hold each conflict key once, in the order their locks
    should be taken. On SQLite, `upsert` itself runs once per row (executemany).
    """
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        statement = upsert if upsert is not None else insert(table)
        await connection.execute(statement, [{c: row.get(c) for c in columns} for row in rows])
        return
    columns = tuple(columns)
    json_columns = [name for name in columns if isinstance(table.c[name].type, JSON)]
    conflict = _conflict_clause(upsert, columns) if upsert is not None else ""
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None, "a connection of the pool has its driver connection"
    per_statement = 32767 // len(columns)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        parameters: list[Any] = []
        for row in chunk:
            if json_columns:  # JSON values go as their text (a copy: the row stays as built)
                row = {
                    **row,
                    **{n: json_text(row[n]) for n in json_columns if row.get(n) is not None},
                }
            parameters += map(row.get, columns)
        sql = _values_statement(table.name, columns, len(chunk), conflict)
        await driver.execute(sql, *parameters)


@functools.lru_cache(maxsize=512)
def _values_statement(table: str, columns: tuple[str, ...], count: int, conflict: str) -> str:
    """`INSERT INTO table (columns) VALUES ($1, …), …` for `count` rows, then `conflict`."""
    width = len(columns)
    values = ", ".join(
        "(" + ", ".join(f"${i * width + j + 1}" for j in range(width)) + ")" for i in range(count)
    )
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}{conflict}"


@functools.lru_cache(maxsize=64)
def _conflict_clause(upsert: Any, columns: tuple[str, ...]) -> str:
    """The ` ON CONFLICT …` part of an upsert statement as PostgreSQL reads it (compiled once
    per statement and columns; the statements themselves are built once per dialect)."""
    dialect = asyncpg.dialect()  # type: ignore[no-untyped-call]
    compiled = str(upsert.compile(dialect=dialect, column_keys=list(columns)))
    clause = compiled[compiled.index(" ON CONFLICT") :]
    assert "$" not in clause, "no parameter in the conflict clause"
    return clause


def create_engine(
    settings: Settings, url: str | None = None, *, as_owner: bool = False, pool_size: int = 0
) -> AsyncEngine:
    """Build the engine for `url` (default: the configured database).

    On PostgreSQL its connections switch to `DATABASE_ROLE`, held by row-level security
    (app/core/tenancy.py), unless `as_owner`: migrations and the cross-tenant maintenance
    listed in docs/security.md stay the login role. `pool_size` (0: DB_POOL_SIZE) sizes a pool
    that only background work uses.
    """
    url = url or settings.database_url
    if url.startswith("sqlite"):
        # SQLite has one writer at a time; one pooled connection per process serialises this
        # process's transactions instead of failing them with "database is locked".
        engine = create_async_engine(
            url,
            json_serializer=json_text,
            pool_size=1,
            max_overflow=0,
            pool_timeout=30,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        json_serializer=json_text,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        connect_args={"statement_cache_size": 500, "max_cacheable_statement_size": 256 * 1024},
    )
    # Rows given as a list (executemany) go as multi-row INSERTs of up to 1,000 rows: one
    # statement, one round trip and one routed statement on a distributed PostgreSQL, where a
    # statement per row would cost a round trip from the coordinator to a worker each.
    engine.dialect.use_insertmanyvalues_wo_returning = True
    tenancy.install(engine, None if as_owner else settings.database_role or None)
    event.listen(engine.sync_engine.pool, "checkout", _replace_closed)
    return engine


def _driver_closed(dbapi_connection: Any) -> bool:
    """Whether the driver already knows that the server closed this connection.

    When PostgreSQL restarts it closes every connection; asyncpg sees the end of each socket
    as soon as the event loop reads it and marks the connection closed. Asking costs nothing
    (no round trip, unlike a pre-ping), and a connection known to be dead is never handed to a
    request, whose first statement would otherwise fail with "connection is closed".
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    return bool(is_closed is not None and is_closed())


def _replace_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout: a connection the server closed is replaced by a new one (the pool
    discards a connection whose checkout raises DisconnectionError and takes another)."""
    if _driver_closed(dbapi_connection):
        raise DisconnectionError("connection closed by the server")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        engine,
        expire_on_commit=False,
        autoflush=False,
        sync_session_class=tenancy.TenantSession,
    )


class KeptConnection:
    """A connection held by one sequential user (the group-commit writer, the key lookups).

    Their statements run one at a time, so a pool checkout and return per use would only add
    cost. A connection that failed is not trusted again: `drop` it, and the next `get` opens
    another.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._connection: AsyncConnection | None = None

    @property
    def held(self) -> AsyncConnection | None:
        """The kept connection, unless the server is known to have closed it."""
        connection = self._connection
        sync = connection.sync_connection if connection is not None else None
        if sync is None or sync.invalidated or sync.closed or _driver_closed(sync.connection):
            return None
        return connection

    async def get(self) -> AsyncConnection:
        """The kept connection; a new one when there is none or the server closed it (a
        restart), so that no statement runs on a connection known to be dead."""
        if self._connection is not None and self.held is None:
            await self.drop()
        if self._connection is None:
            self._connection = await self.engine.connect()
        return self._connection

    async def drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.invalidate()

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()


async def fetch_all(session: AsyncSession, query: Executable) -> Sequence[Row[Any]]:
    """The rows of a Core query, run on the session's connection.

    A select of plain columns needs none of the ORM's per-row work; reads that return many
    rows (listings, statistics) skip it this way.
    """
    connection = await session.connection()
    return (await connection.execute(query)).all()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: commits when the route returns, rolls back when it raises.

    Routes depend on it with scope="function", so the commit happens before the response is
    sent: a 2xx on a write means the row is committed.
    """
    sessionmaker = core_state(request.app).sessionmaker
    async with tenancy.request_session(sessionmaker, request.state) as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for routes that only read: a short transaction, rolled back at the end.

    Not autocommit: the tenant is set per transaction (`SET LOCAL`, app/core/tenancy.py), the
    one form a distributed PostgreSQL carries to its workers; nothing is committed.
    """
    sessionmaker = core_state(request.app).read_sessionmaker
    async with tenancy.request_session(sessionmaker, request.state) as session:
        yield session


async def get_operator_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for the operator's reads across tenants (every tenant's archive files): the
    login role, which row-level security does not hold, since the view is of every tenant by
    design and the admin token is the whole of the operator's authority."""
    async with AsyncSession(core_state(request.app).maintenance_engine) as session:
        yield session
