"""Rules for tenants and API keys: slugs, key issuance, expiry and revocation.

Every change is written to the tenant's own audit trail through AuditService, with the actor
(`admin`, `key:<prefix>` or `cli`), IP address and user agent. Audit rows of a key hold its
id, name, prefix, scopes and dates, never its secret or its hash.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.audits.service import AuditService
from app.core.auth import ALL_SCOPES, Actor
from app.core.db import utcnow
from app.core.errors import Conflict, NotFound, invalid
from app.core.redact import PayloadRules
from app.core.storable import text_problem
from app.tenants.keys import generate_api_key
from app.tenants.models import ApiKey, Tenant
from app.tenants.repository import ApiKeyRepository, TenantRepository
from app.tenants.schemas import ApiKeyCreate, TenantCreate, TenantUpdate


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    plaintext: str


def _tenant_data(tenant: Tenant) -> dict[str, Any]:
    return {
        "name": tenant.name,
        "slug": tenant.slug,
        "retention_days": tenant.retention_days,
        "audit_retention_days": tenant.audit_retention_days,
    }


def _key_data(key: ApiKey) -> dict[str, Any]:
    return {
        "id": str(key.id),
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
    }


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:100].strip("-")
    return slug or "tenant"


class TenantService:
    def __init__(self, session: AsyncSession, actor: Actor, rules: PayloadRules) -> None:
        self.session = session
        self.actor = actor
        self.tenants = TenantRepository(session)
        self.audits = AuditService(session, rules)

    async def create(self, data: TenantCreate) -> tuple[Tenant, IssuedKey]:
        slug = data.slug or await self._free_slug(slugify(data.name))
        if await self.tenants.slug_taken(slug):
            raise Conflict(f"slug '{slug}' is already taken")
        tenant = await self.tenants.add(
            Tenant(
                name=data.name,
                slug=slug,
                retention_days=data.retention_days,
                audit_retention_days=data.audit_retention_days,
            )
        )
        await self.audits.log_create(
            tenant.id, "tenant", str(tenant.id), _tenant_data(tenant), self.actor.recorded()
        )
        issued = await self.issue_key(
            tenant.id, ApiKeyCreate(name="default", scopes=list(ALL_SCOPES))
        )
        return tenant, issued

    async def _free_slug(self, base: str) -> str:
        slug, n = base, 1
        while await self.tenants.slug_taken(slug):
            n += 1
            suffix = f"-{n}"
            slug = base[: 100 - len(suffix)] + suffix
        return slug

    async def get(self, tenant_id: UUID) -> Tenant:
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} not found")
        return tenant

    async def get_by_id_or_slug(self, ref: str) -> Tenant:
        """A tenant by its id or its slug (the CLI and the admin API take either)."""
        if text_problem(ref) is not None:
            raise NotFound(f"tenant '{ref}' not found")
        try:
            tenant = await self.tenants.get(UUID(ref))
        except ValueError:
            tenant = await self.tenants.get_by_slug(ref)
        if tenant is None:
            raise NotFound(f"tenant '{ref}' not found")
        return tenant

    async def list(self, skip: int, limit: int) -> Sequence[Tenant]:
        return await self.tenants.list(skip, limit)

    async def update(self, tenant_id: UUID, data: TenantUpdate) -> Tenant:
        tenant = await self.get(tenant_id)
        changes = data.model_dump(exclude_unset=True)
        if changes.get("name", "") is None or changes.get("slug", "") is None:
            field = "name" if changes.get("name", "") is None else "slug"
            raise invalid(("body", field), "name and slug cannot be null")
        new_slug = changes.get("slug", tenant.slug)
        if new_slug != tenant.slug and await self.tenants.slug_taken(new_slug):
            raise Conflict(f"slug '{new_slug}' is already taken")
        before = _tenant_data(tenant)
        for field, value in changes.items():
            setattr(tenant, field, value)
        await self.session.flush()
        await self.audits.log_update(
            tenant.id, "tenant", str(tenant.id), before, _tenant_data(tenant), self.actor.recorded()
        )
        return tenant

    async def issue_key(self, tenant_id: UUID, data: ApiKeyCreate) -> IssuedKey:
        if data.expires_at is not None and data.expires_at <= utcnow():
            raise invalid(("body", "expires_at"), "expires_at must be in the future")
        new = generate_api_key()
        key = ApiKey(
            name=data.name,
            prefix=new.prefix,
            key_hash=new.key_hash,
            scopes=sorted(set(data.scopes)),
            expires_at=data.expires_at,
        )
        await ApiKeyRepository(self.session, tenant_id).add(key)
        await self.audits.log_create(
            tenant_id, "api_key", str(key.id), _key_data(key), self.actor.recorded()
        )
        return IssuedKey(key=key, plaintext=new.plaintext)

    async def list_keys(self, tenant_id: UUID) -> Sequence[ApiKey]:
        return await ApiKeyRepository(self.session, tenant_id).list()

    async def revoke_key(self, tenant_id: UUID, key_id: UUID) -> ApiKey:
        keys = ApiKeyRepository(self.session, tenant_id)
        key = await keys.get(key_id)
        if key is None:
            raise NotFound(f"API key {key_id} not found")
        if key.revoked_at is None:
            before = _key_data(key)
            key.revoked_at = utcnow()
            await self.session.flush()
            await self.audits.log(
                tenant_id,
                "revoke",
                "api_key",
                str(key_id),
                before,
                _key_data(key),
                self.actor.recorded(),
            )
        return key
