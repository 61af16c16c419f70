"""What the schema domain keeps in the application's state (app/core/state.py): the worker's
catalog of compiled schemas, reloaded when any worker puts a new version."""

from dataclasses import dataclass
from typing import Any

from app.action_schemas.catalog import SchemaCatalog
from app.core.state import CoreState


@dataclass(kw_only=True, eq=False)
class SchemasState(CoreState):
    action_schemas: SchemaCatalog


def schema_catalog(app: Any) -> SchemaCatalog:
    state = app.state
    assert isinstance(state, SchemasState), "the application is built by create_app"
    return state.action_schemas
