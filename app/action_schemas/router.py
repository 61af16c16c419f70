"""HTTP routes of action schemas: put a new version and delete (`admin`), read and list (`read`)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from app.action_schemas.schemas import SchemaPut, SchemaRead
from app.action_schemas.service import SchemaService
from app.action_schemas.state import schema_catalog
from app.core.auth import AdminTenant, ReadSessionDep, ReadTenant, SessionDep
from app.core.errors import Forbidden, NotFound, Unauthorized, Unprocessable, error_responses
from app.core.inputs import Text

router = APIRouter(
    prefix="/api/v1/schemas",
    tags=["action schemas"],
    responses=error_responses(Unauthorized, Forbidden),
)

ActionType = Annotated[
    Text,
    Path(min_length=1, max_length=100, pattern=r"^\S+$", description="The action type"),
]


async def writing(request: Request, tenant: AdminTenant, session: SessionDep) -> SchemaService:
    return SchemaService(session, tenant.tenant_id, schema_catalog(request.app))


async def reading(request: Request, tenant: ReadTenant, session: ReadSessionDep) -> SchemaService:
    return SchemaService(session, tenant.tenant_id, schema_catalog(request.app))


Writing = Annotated[SchemaService, Depends(writing)]
Reading = Annotated[SchemaService, Depends(reading)]


@router.put("/{action_type}", response_model=SchemaRead, responses=error_responses(Unprocessable))
async def put_schema(action_type: ActionType, body: SchemaPut, service: Writing) -> SchemaRead:
    """Put a new version of the action type's schema in force (JSON Schema 2020-12)."""
    return await service.put(action_type, body)


@router.get("", response_model=list[SchemaRead])
async def list_schemas(service: Reading) -> list[SchemaRead]:
    """The schema in force of every action type that has one."""
    return list(await service.current())


@router.get("/{action_type}", response_model=SchemaRead, responses=error_responses(NotFound))
async def get_schema(action_type: ActionType, service: Reading) -> SchemaRead:
    """The schema in force of an action type."""
    return await service.in_force(action_type)


@router.get(
    "/{action_type}/versions/{version}",
    response_model=SchemaRead,
    responses=error_responses(NotFound),
)
async def get_version(
    action_type: ActionType,
    version: Annotated[int, Path(ge=1, le=2**31 - 1, description="The version number")],
    service: Reading,
) -> SchemaRead:
    """One version of an action type's schema, current or not."""
    return await service.version(action_type, version)


@router.delete(
    "/{action_type}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(NotFound),
)
async def delete_schema(action_type: ActionType, service: Writing) -> Response:
    """Stop checking the action type (its versions are kept)."""
    await service.delete(action_type)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
