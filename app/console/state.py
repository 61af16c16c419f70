"""What the console keeps in the application's state (app/core/state.py): the signer of its
session cookies, set when the console is installed."""

from dataclasses import dataclass
from typing import Any

from app.console.session import SessionSigner
from app.core.state import CoreState


@dataclass(kw_only=True, eq=False)
class ConsoleState(CoreState):
    console_signer: SessionSigner | None = None


def console_signer(app: Any) -> SessionSigner:
    state = app.state
    assert isinstance(state, ConsoleState), "the application is built by create_app"
    assert state.console_signer is not None, "the console is installed"
    return state.console_signer


def console_state(app: Any) -> ConsoleState:
    state = app.state
    assert isinstance(state, ConsoleState), "the application is built by create_app"
    return state
