"""What the action domain keeps in the application's state (app/core/state.py)."""

from dataclasses import dataclass
from typing import Any

from app.actions.recorder import ActionWriter, ClaimReads
from app.actions.rows import RowBuilder
from app.core.state import CoreState


@dataclass(kw_only=True, eq=False)
class ActionsState(CoreState):
    row_builder: RowBuilder
    # the worker's writer of action rows (group commit on PostgreSQL)
    writer: ActionWriter
    # lookups of client-generated ids, outside any request session
    action_reads: ClaimReads


def actions_state(app: Any) -> ActionsState:
    state = app.state
    assert isinstance(state, ActionsState), "the application is built by create_app"
    return state
