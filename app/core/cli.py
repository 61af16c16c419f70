"""What every `actionlog` command shares: one-line errors, a session as the database's owner,
the migrations, and the parsing of the arguments that several domains take.

Each domain's commands live in its own `cli.py` (`add_commands` registers them); app/cli.py
assembles the parser and runs the command.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Actor
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.inputs import QueryTime

CLI_ACTOR = Actor(id="cli")
T = TypeVar("T")


class CliError(Exception):
    """A failure reported to the user as one line."""


async def in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction as the database's owner."""
    engine = create_engine(settings, as_owner=True)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


def run_in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    return asyncio.run(in_session(settings, work))


async def migrate(settings: Settings) -> None:
    from app.core import migrations  # Alembic: loaded by the commands that migrate only

    engine = create_engine(settings, as_owner=True)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


def print_fields(data: dict[str, Any], as_json: bool) -> None:
    """One JSON line, or a `field: value` line per field."""
    if as_json:
        print(json.dumps(data, default=str))
    else:
        for field, value in data.items():
            print(f"{field}: {value}")


def parse_uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise CliError(f"{what} '{value}' is not a UUID") from None


_MOMENT = TypeAdapter(QueryTime)


def moment(value: str, what: str) -> datetime:
    """A time as the API's query parameters take it (ISO 8601, a date, Unix seconds, -7d …)."""
    try:
        return _MOMENT.validate_python(value)
    except ValidationError as exc:
        raise CliError(f"{what}: {exc.errors()[0]['msg']}") from None


def days(value: str) -> int | None:
    """A number of days, or `none`/`forever` to keep forever."""
    if value.lower() in {"none", "forever", "null"}:
        return None
    try:
        return int(value)
    except ValueError:
        raise CliError(f"'{value}' is not a number of days (or 'none')") from None
