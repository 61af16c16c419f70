"""What a viewer session may see: the token's filters laid over whatever the page asks.

Each filter of the token replaces the same filter of the request, whatever the query string
says, so editing the address can narrow nothing further and widen nothing at all: a list or
figure of the embedded console is always computed under the token's filters (statistics
included). A single record (an action's detail page) is shown only when it matches them.
"""

from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from app.actions.filters import ActionFilter
from app.audits.schemas import AuditFilters
from app.viewer.schemas import Kind, ViewerFilters

# The stream's filters (the live tail) cover these token filters; `source` it cannot apply.
STREAM_FILTERS = frozenset(
    {"action_type", "provider_name", "service", "user_id", "session_id", "correlation_id"}
)


@dataclass(frozen=True)
class ViewerScope:
    tenant_id: UUID
    token_id: UUID
    filters: ViewerFilters
    kinds: tuple[Kind, ...]
    can_export: bool
    embed_origin: str | None

    def sees(self, kind: Kind) -> bool:
        return kind in self.kinds

    def actions(self, asked: ActionFilter) -> ActionFilter:
        """The request's action filter with every token filter put over it."""
        f = self.filters
        fixed: dict[str, Any] = {
            "action_types": tuple(f.action_type) if f.action_type else None,
            "providers": tuple(f.provider_name) if f.provider_name else None,
            "service": f.service,
            "source": f.source,
            "user_id": f.user_id,
            "session_id": f.session_id,
            "correlation_id": f.correlation_id,
        }
        return replace(asked, **{k: v for k, v in fixed.items() if v is not None})

    def audits(self, asked: AuditFilters) -> AuditFilters:
        """The request's audit filter with every token filter put over it."""
        f = self.filters
        fixed: dict[str, Any] = {
            "action": f.action,
            "resource_type": f.resource_type,
            "resource_id": f.resource_id,
            "user_id": f.user_id,
            "correlation_id": f.correlation_id,
        }
        return replace(asked, **{k: v for k, v in fixed.items() if v is not None})

    def allows(self, action: Any) -> bool:
        """Whether one action (a record with the action columns) matches the token."""
        f = self.filters
        if f.action_type and action.action_type not in f.action_type:
            return False
        if f.provider_name and action.provider_name not in f.provider_name:
            return False
        exact = ("service", "source", "user_id", "session_id", "correlation_id")
        return all(
            getattr(f, name) is None or getattr(action, name) == getattr(f, name) for name in exact
        )

    @property
    def live_tail(self) -> bool:
        return self.filters.given() <= STREAM_FILTERS

    def stream_params(self) -> dict[str, Any]:
        f = self.filters
        params: dict[str, Any] = {"kinds": "action"}
        for name in ("action_type", "provider_name"):
            if getattr(f, name):
                params[name] = list(getattr(f, name))
        for name in ("service", "user_id", "session_id", "correlation_id"):
            if getattr(f, name) is not None:
                params[name] = getattr(f, name)
        return params
