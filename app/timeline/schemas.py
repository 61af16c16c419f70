"""The entries of a causal timeline: actions and audit events, each tagged with its kind."""

from typing import Annotated, Literal

from pydantic import Field

from app.actions.schemas import ActionSummary
from app.audits.schemas import AuditRead


class ActionEntry(ActionSummary):
    """An action of the timeline, as the action list shows it."""

    kind: Literal["action"] = "action"


class AuditEntry(AuditRead):
    """An audit event of the timeline, as the audit list shows it."""

    kind: Literal["audit"] = "audit"


TimelineEntry = Annotated[ActionEntry | AuditEntry, Field(discriminator="kind")]
