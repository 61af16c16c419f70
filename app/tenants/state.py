"""What the tenant domain keeps in the application's state (app/core/state.py): the key
lookups, which core sees only as a `KeyResolver`."""

from dataclasses import dataclass
from typing import Any

from app.core.state import CoreState
from app.tenants.keys import KeyLookups


@dataclass(kw_only=True, eq=False)
class TenantsState(CoreState):
    keys: KeyLookups


def tenants_state(app: Any) -> TenantsState:
    state = app.state
    assert isinstance(state, TenantsState), "the application is built by create_app"
    return state
