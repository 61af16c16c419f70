"""SQL of one tenant's viewer tokens."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.viewer.models import ViewerToken


class ViewerTokenRepository:
    def __init__(self, session: AsyncSession, tenant_id: UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def add(self, token: ViewerToken) -> None:
        token.tenant_id = self.tenant_id
        self.session.add(token)
        await self.session.flush()

    async def get(self, token_id: UUID) -> ViewerToken | None:
        query = select(ViewerToken).where(
            ViewerToken.tenant_id == self.tenant_id, ViewerToken.id == token_id
        )
        return (await self.session.scalars(query)).one_or_none()

    async def live(self, now: datetime) -> Sequence[ViewerToken]:
        query = (
            select(ViewerToken)
            .where(
                ViewerToken.tenant_id == self.tenant_id,
                ViewerToken.expires_at > now,
                ViewerToken.revoked_at.is_(None),
            )
            .order_by(ViewerToken.created_at.desc())
        )
        return (await self.session.scalars(query)).all()

    async def flush(self) -> None:
        await self.session.flush()
