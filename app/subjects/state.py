"""What the personal-data domain keeps in the application's state (app/core/state.py): how it
audits its own changes (an audit service for a session, given by the application, since the
audit domain sits above this one)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.state import CoreState
from app.subjects.service import SelfAudit


@dataclass(kw_only=True, eq=False)
class SubjectsState(CoreState):
    self_audit: Callable[[AsyncSession], SelfAudit]


def self_audit(app: Any) -> Callable[[AsyncSession], SelfAudit]:
    state = app.state
    assert isinstance(state, SubjectsState), "the application is built by create_app"
    return state.self_audit
