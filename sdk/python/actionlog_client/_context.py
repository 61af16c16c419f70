"""The action being run in this context, so that nested actions link to it by themselves.

Inside `with logger.action(...)` (or a `@logger.track` function, or a request seen by
`ActionLogMiddleware`), actions started without a `parent_id` get the enclosing action's id
as their `parent_id`, and its `correlation_id` when they have none. A `ContextVar` carries it,
so each thread and each asyncio task sees its own chain.
"""

from contextlib import suppress
from contextvars import ContextVar, Token
from typing import NamedTuple


class Current(NamedTuple):
    action_id: str
    correlation_id: str | None


current: ContextVar[Current | None] = ContextVar("actionlog_current_action", default=None)


def enter(action_id: str, correlation_id: str | None) -> Token[Current | None]:
    return current.set(Current(action_id, correlation_id))


def leave(token: Token[Current | None]) -> None:
    # left in another context (a generator resumed elsewhere): nothing to restore there
    with suppress(ValueError):
        current.reset(token)
