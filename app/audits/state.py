"""What the audit domain keeps in the application's state (app/core/state.py)."""

from dataclasses import dataclass
from typing import Any

from app.audits.events import EventBuilder
from app.audits.recorder import AuditWriter
from app.audits.signing import SignerSource
from app.core.state import CoreState


@dataclass(kw_only=True, eq=False)
class AuditsState(CoreState):
    audit_events: EventBuilder
    # the worker's writer of audit events (group commit on PostgreSQL)
    audit_writer: AuditWriter
    signer: SignerSource


def audits_state(app: Any) -> AuditsState:
    state = app.state
    assert isinstance(state, AuditsState), "the application is built by create_app"
    return state
