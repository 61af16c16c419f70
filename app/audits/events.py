"""Audit events before they join a chain: validated, redacted, with their field-level diff.

Every audit write builds its event here, whoever writes it (the HTTP routes through the writer,
the service's self-audits in their session), so the rules are stated once. Building needs no
database: the routes check a whole request, batch included, before anything is queued, and a
422 names the field (and, in a batch, the item's index). An `update` whose `before` equals its
`after` changed nothing: it builds no event (None). Secrets are redacted here, before the row
is hashed and stored, so neither the database nor the chain ever holds them.

An event is the content of a row without its place in the chain (id, sequence, created_at,
prev_hash and hash are stamped when the chain is extended: app/audits/repository.py).
"""

import math
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

from app.audits.diff import compute_diff, json_equal
from app.audits.schemas import AuditCreate
from app.core.auth import Actor
from app.core.errors import Loc, invalid
from app.core.redact import PayloadRules, json_depth_exceeds
from app.core.storable import NOT_FINITE, text_problem

NO_CHANGES = "no changes: before equals after, nothing was recorded"

Event = dict[str, Any]

# Column limits of audit_logs: (field, maximum length, required).
_TEXT_FIELDS = (
    ("action", 100, True),
    ("resource_type", 100, True),
    ("resource_id", 255, True),
    ("user_id", 255, False),
    ("ip_address", 45, False),
    ("user_agent", 1024, False),
    ("correlation_id", 255, False),
)


def _check_text(loc: Loc, value: str) -> None:
    if (problem := text_problem(value)) is not None:
        raise invalid(loc, problem)


def _check_json(loc: Loc, value: Any) -> None:
    """Refuse what JSON columns cannot store or roundtrip: NUL, lone surrogates, NaN and
    infinities (app/core/storable.py)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                _check_text((*loc, key), key)
            _check_json((*loc, key), item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json((*loc, index), item)
    elif isinstance(value, str):
        _check_text(loc, value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise invalid(loc, NOT_FINITE)


class EventBuilder:
    """Builds audit events under the configured payload rules (redaction, JSON depth)."""

    def __init__(self, rules: PayloadRules) -> None:
        self.redactor = rules.redactor
        self.max_json_depth = rules.max_json_depth

    def from_body(self, body: AuditCreate, loc: Loc = ("body",)) -> Event | None:
        """The event of a request body (`loc`: where the body is, for the 422s)."""
        return self.build(
            body.action,
            body.resource_type,
            body.resource_id,
            body.before,
            body.after,
            Actor(body.user_id, str(body.ip_address) if body.ip_address else None, body.user_agent),
            body.metadata,
            correlation_id=body.correlation_id,
            loc=loc,
        )

    def build(
        self,
        action: str,
        resource_type: str,
        resource_id: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        actor: Actor | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        correlation_id: str | None = None,
        loc: Loc = ("body",),
    ) -> Event | None:
        """Any event; None for an `update` with `before` equal to `after` (nothing to record)."""
        actor = actor or Actor(None)
        texts = {
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "user_id": actor.id,
            "ip_address": actor.ip_address,
            "user_agent": actor.user_agent,
            "correlation_id": correlation_id,
        }
        self._check_texts(loc, texts)
        if actor.user_agent is not None:
            texts["user_agent"] = self.redactor.scrub(actor.user_agent)
        before = self._json((*loc, "before"), before)
        after = self._json((*loc, "after"), after)
        metadata = self._json((*loc, "metadata"), metadata) or {}
        if action == "update" and json_equal(before, after):
            return None
        changes = {
            "before": self.redactor.redact(before),
            "after": self.redactor.redact(after),
            "diff": compute_diff(before, after, self.redactor),
        }
        return {**texts, "changes": changes, "metadata": self.redactor.redact(metadata)}

    def _check_texts(self, loc: Loc, texts: dict[str, str | None]) -> None:
        for field, limit, required in _TEXT_FIELDS:
            value, at = texts[field], (*loc, field)
            if value is None:
                if required:
                    raise invalid(at, "field required", "missing")
                continue
            if not isinstance(value, str):
                raise invalid(at, "must be a string", "string_type")
            if required and not value:
                raise invalid(at, "must not be empty", "string_too_short")
            if len(value) > limit:
                raise invalid(at, f"must be at most {limit} characters", "string_too_long")
            _check_text(at, value)

    def _json(self, loc: Loc, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise invalid(loc, "must be a JSON object or null", "dict_type")
        if json_depth_exceeds(value, self.max_json_depth):
            message = f"JSON nested deeper than {self.max_json_depth} levels"
            raise invalid(loc, message, "json_too_deep")
        _check_json(loc, value)
        try:
            return to_jsonable_python(value)
        except (PydanticSerializationError, ValueError):
            raise invalid(loc, "is not JSON") from None
