"""HTTP routes of viewer tokens (`admin` scope): mint a viewer link, list the live ones,
revoke one at once."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request, Response, status

from app.core.auth import AdminTenant, SessionDep
from app.core.errors import Forbidden, NotFound, Unauthorized, Unprocessable, error_responses
from app.core.state import core_state
from app.viewer.schemas import ViewerTokenCreate, ViewerTokenCreated, ViewerTokenRead
from app.viewer.service import ViewerTokenService, read

router = APIRouter(
    prefix="/api/v1/viewer-tokens",
    tags=["viewer links"],
    responses=error_responses(Unauthorized, Forbidden),
)


async def viewer_tokens(tenant: AdminTenant, session: SessionDep) -> ViewerTokenService:
    return ViewerTokenService(session, tenant.tenant_id)


Tokens = Annotated[ViewerTokenService, Depends(viewer_tokens)]


def _base_url(request: Request) -> str:
    configured = core_state(request.app).settings.public_url
    return str(configured or request.base_url).rstrip("/")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ViewerTokenCreated,
    responses=error_responses(Unprocessable),
)
async def create_viewer_token(
    request: Request, body: ViewerTokenCreate, tenant: AdminTenant, service: Tokens
) -> ViewerTokenCreated:
    """Mint a viewer link: a read-only console narrowed to `filters`, until `expires_in`."""
    text, token = await service.create(body, tenant.actor.id)
    return ViewerTokenCreated(
        **read(token).model_dump(),
        token=text,
        url=f"{_base_url(request)}/ui/embed?token={text}",
    )


@router.get("", response_model=list[ViewerTokenRead])
async def list_viewer_tokens(service: Tokens) -> list[ViewerTokenRead]:
    """The live viewer tokens (neither expired nor revoked), newest first."""
    return [read(token) for token in await service.live()]


@router.delete(
    "/{token_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(NotFound)
)
async def revoke_viewer_token(
    token_id: Annotated[UUID, Path(description="The token's id")], service: Tokens
) -> Response:
    """Revoke a viewer token: its link and every session it opened stop at once."""
    await service.revoke(token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
