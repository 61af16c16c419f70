"""The console's Schemas page: the action types a tenant records, each with its schema.

Types come from the all-time statistics (rollups: no scan of rows), schemas from the schema
service; each type links to its actions that failed a `warn` schema (`schema_errors=true`).
"""

from fastapi import APIRouter, Request, Response

from app.action_schemas.service import SchemaService
from app.action_schemas.state import schema_catalog
from app.actions.filters import ActionFilter
from app.console.auth import ConsoleTenant
from app.console.dependencies import Stats
from app.console.render import render
from app.console.routing import ConsoleRoute
from app.core.auth import ReadSessionDep

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)


@router.get("/schemas")
async def schemas_page(
    request: Request, tenant: ConsoleTenant, stats: Stats, session: ReadSessionDep
) -> Response:
    service = SchemaService(session, tenant.tenant_id, schema_catalog(request.app))
    schemas = {schema.action_type: schema for schema in await service.current()}
    summary = await stats.summary(ActionFilter())
    counts = {name: row.count for name, row in summary.by_type.items()}
    types = sorted(set(counts) | set(schemas))
    flagged = await stats.summary(ActionFilter(schema_errors=True))
    failed = {name: row.count for name, row in flagged.by_type.items()}
    rows = [(t, counts.get(t, 0), schemas.get(t), failed.get(t, 0)) for t in types]
    return render(request, "schemas.html", rows=rows)
