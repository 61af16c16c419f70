"""Database plumbing: declarative base, portable column types, engine and session factory.

PostgreSQL (asyncpg) is the production engine and SQLite (aiosqlite) the embedded default; the
column types below make both store the same thing: JSONB on PostgreSQL, timezone-aware UTC
timestamps everywhere, and UUIDs in their native form where the engine has one.
"""

import contextlib
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
from sqlalchemy import JSON, DateTime, Executable, MetaData, Row, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
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


def rows_json(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as one JSON array: orjson, or the standard library for integers beyond 64 bits
    (stored exactly). Ids and times become text, which their columns parse back."""
    try:
        return orjson.dumps(rows, default=str).decode()
    except TypeError:
        return json.dumps(rows, default=str)


async def insert_json_rows(
    connection: AsyncConnection, table: str, columns: Sequence[str], rows: Sequence[dict[str, Any]]
) -> None:
    """INSERT `rows` into `table` (PostgreSQL) as one JSON array that the server expands with
    `json_populate_recordset`: one statement, executed once, whatever the number of rows.

    This is how the write paths insert many rows at once. COPY would be faster still, but
    PostgreSQL refuses COPY FROM into a table under row-level security; an INSERT is checked
    by the policy like any other. A JSON null becomes SQL NULL, as None does elsewhere.
    """
    names = ", ".join(columns)
    statement = (
        f"INSERT INTO {table} ({names}) SELECT {names} "
        f"FROM json_populate_recordset(NULL::{table}, $1::json)"
    )
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None, "a connection of the pool has its driver connection"
    await driver.execute(statement, rows_json(rows))


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
    )
    tenancy.install(engine, None if as_owner else settings.database_role or None)
    return engine


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
        return self._connection

    async def get(self) -> AsyncConnection:
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
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with tenancy.request_session(sessionmaker, request.state) as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for routes that only read, in autocommit: no BEGIN and COMMIT round trips.

    Nothing is lost by it: under PostgreSQL's READ COMMITTED every statement reads its own
    snapshot, inside a transaction or not. Its tenant setting is the connection's, reset when
    the connection returns to the pool (app/core/tenancy.py).
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.read_sessionmaker
    async with tenancy.request_session(sessionmaker, request.state) as session:
        yield session


async def get_operator_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for the operator's reads across tenants (every tenant's archive files): the
    login role, which row-level security does not hold, since the view is of every tenant by
    design and the admin token is the whole of the operator's authority."""
    async with AsyncSession(request.app.state.maintenance_engine) as session:
        yield session
