"""Rules of viewer tokens: minting (kinds that the filters can narrow), listing, revoking,
and opening one (the token's state, or why it is refused)."""

from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import new_id, utcnow
from app.core.errors import NotFound, invalid
from app.viewer import tokens
from app.viewer.models import ViewerToken
from app.viewer.repository import ViewerTokenRepository
from app.viewer.schemas import (
    ACTION_ONLY,
    AUDIT_ONLY,
    Kind,
    ViewerFilters,
    ViewerTokenCreate,
    ViewerTokenRead,
)
from app.viewer.scope import ViewerScope


class ViewerRefused(Exception):
    """A viewer token or session that opens nothing, and what to tell the viewer (inside the
    frame of the token's origin, when the token is known)."""

    def __init__(self, message: str, embed_origin: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.embed_origin = embed_origin


def _kinds(body: ViewerTokenCreate) -> list[Kind]:
    """The kinds the token shows: each must be one its filters narrow entirely."""
    given = body.filters.given()
    possible: list[Kind] = []
    if not given & AUDIT_ONLY:
        possible.append("action")
    if not given & ACTION_ONLY:
        possible.append("audit")
    if body.kinds is None:
        if not possible:
            raise invalid(
                ("body", "filters"),
                "filters of actions (action_type, provider_name, service, source, session_id) "
                "and of audit events (resource_type, resource_id, action) cannot be combined",
            )
        return possible
    for kind in body.kinds:
        if kind not in possible:
            other = ", ".join(sorted(given & (AUDIT_ONLY if kind == "action" else ACTION_ONLY)))
            raise invalid(("body", "kinds"), f"{kind} records cannot be narrowed by {other}")
    return sorted(set(body.kinds), key=("action", "audit").index)


def read(token: ViewerToken) -> ViewerTokenRead:
    return ViewerTokenRead(
        id=token.id,
        filters=ViewerFilters.model_validate(token.filters),
        kinds=token.kinds,
        embed_origin=token.embed_origin,
        can_export=token.can_export,
        created_at=token.created_at,
        expires_at=token.expires_at,
    )


class ViewerTokenService:
    """The viewer tokens of one tenant, in the request's session."""

    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.tenant_id = tenant_id
        self.tokens = ViewerTokenRepository(session, tenant_id)

    async def create(
        self, body: ViewerTokenCreate, created_by: str | None
    ) -> tuple[str, ViewerToken]:
        kinds = _kinds(body)
        now = utcnow()
        token_id = new_id()
        text, secret_hash = tokens.mint(self.tenant_id, token_id)
        token = ViewerToken(
            id=token_id,
            secret_hash=secret_hash,
            filters=body.filters.model_dump(exclude_none=True),
            kinds=kinds,
            embed_origin=body.embed_origin,
            can_export=body.can_export,
            created_by=created_by,
            created_at=now,
            expires_at=now + timedelta(seconds=body.expires_in),
        )
        await self.tokens.add(token)
        return text, token

    async def live(self) -> Sequence[ViewerToken]:
        return await self.tokens.live(utcnow())

    async def revoke(self, token_id: UUID) -> None:
        token = await self.tokens.get(token_id)
        if token is None or token.revoked_at is not None:
            raise NotFound(f"viewer token {token_id} not found")
        token.revoked_at = utcnow()
        await self.tokens.flush()

    async def open(self, token_id: UUID, presented: tokens.PresentedToken | None) -> ViewerScope:
        """The scope of a live token (`presented`: its secret checked too), or ViewerRefused."""
        token = await self.tokens.get(token_id)
        if token is None or (presented is not None and not presented.matches(token.secret_hash)):
            raise ViewerRefused("This viewer link is not valid.")
        if token.revoked_at is not None:
            raise ViewerRefused("This viewer link has been revoked.", token.embed_origin)
        if token.expires_at <= utcnow():
            raise ViewerRefused("This viewer link has expired.", token.embed_origin)
        return ViewerScope(
            tenant_id=self.tenant_id,
            token_id=token.id,
            filters=ViewerFilters.model_validate(token.filters),
            kinds=tuple(token.kinds),
            can_export=token.can_export,
            embed_origin=token.embed_origin,
        )
