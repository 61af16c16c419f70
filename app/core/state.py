"""The application's state, typed: what `create_app` builds once and every request uses.

Starlette keeps an application's shared objects in `app.state`, an untyped bag that strict
mypy cannot see into. Here the state is a dataclass instead, built whole in `create_app` (which
puts it in `app.state`'s place), and read through an accessor that checks its type once:
`core_state(app)` for what core itself needs. Each domain that keeps objects there declares
its part as a dataclass extending this one (`ActionsState`, `AuditsState`, …, each in its own
domain, so core imports none of them), with its own accessor; the application's state
(app/main.py) is all of them at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only named here: every core module may read the state without a cycle
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from app.core.auth import KeyResolver
    from app.core.config import Settings
    from app.core.limits import Throttle
    from app.core.redact import PayloadRules


@dataclass(kw_only=True, eq=False)
class CoreState:
    settings: Settings
    # the primary: writes, key lookups, audit reads
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # read routes (a replica when DATABASE_READ_URL is set), in autocommit
    read_engine: AsyncEngine
    read_sessionmaker: async_sessionmaker[AsyncSession]
    # cross-tenant queues, as the login role (app/core/tenancy.py)
    maintenance_engine: AsyncEngine
    keys: KeyResolver
    throttle: Throttle
    payload_rules: PayloadRules
    # connections of the engine's pool: (checked out, size)
    pool_status: Callable[[], tuple[int, int]]


def core_state(app: Any) -> CoreState:
    """The state of a Starlette application built by `create_app`."""
    state = app.state
    assert isinstance(state, CoreState), "the application is built by create_app"
    return state
