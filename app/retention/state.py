"""What retention keeps in the application's state (app/core/state.py)."""

from dataclasses import dataclass
from typing import Any

from app.core.state import CoreState
from app.retention.scheduler import RetentionScheduler
from app.retention.service import Pruner


@dataclass(kw_only=True, eq=False)
class RetentionState(CoreState):
    pruner: Pruner
    retention_scheduler: RetentionScheduler


def retention_state(app: Any) -> RetentionState:
    state = app.state
    assert isinstance(state, RetentionState), "the application is built by create_app"
    return state
