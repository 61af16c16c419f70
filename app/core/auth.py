"""The caller of a request: its tenant, scopes and actor, from its API key or the admin token.

The tenant of a request comes only from its key. Core knows how a key is presented (the
`X-API-Key` header, or `Authorization: Bearer`) and what a request may do with it; finding and
checking the stored key is the tenants domain's (`app/tenants/keys.py`), reached through the
`KeyResolver` of the application's state (app/core/state.py).
"""

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Literal, Protocol
from uuid import UUID

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import get_operator_read_session, get_read_session, get_session
from app.core.errors import Forbidden, NotFound, Unauthorized
from app.core.state import core_state
from app.core.tenancy import bind_request_tenant

ADMIN_DISABLED = "The admin API is disabled: set ADMIN_TOKEN to enable it"
Scope = Literal["read", "write", "admin"]
ALL_SCOPES: tuple[Scope, ...] = ("read", "write", "admin")

SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]
OperatorReadSessionDep = Annotated[AsyncSession, Depends(get_operator_read_session)]

# Declared for OpenAPI (they put the two ways of sending a key in /docs); the key itself is
# read by `presented_key`, the one reader shared with the ingest lane.
# Each scheme has its own name: with one name for two headers, /docs and generated clients
# would send the tenant key to admin routes.
_api_key_header = APIKeyHeader(
    name="X-API-Key", scheme_name="ApiKey", auto_error=False, description="Tenant API key"
)
_bearer = HTTPBearer(
    scheme_name="BearerKey", auto_error=False, description="Tenant API key as a bearer token"
)
_admin_header = APIKeyHeader(
    name="X-Admin-Token",
    scheme_name="AdminToken",
    auto_error=False,
    description="The operator's ADMIN_TOKEN",
)


@dataclass(frozen=True)
class Actor:
    """Who made a change, as written to the audit trail."""

    id: str | None
    ip_address: str | None = None
    user_agent: str | None = None

    @classmethod
    def from_request(cls, request: Request, actor_id: str) -> "Actor":
        client = request.client.host if request.client else None
        return cls(id=actor_id, ip_address=client, user_agent=request.headers.get("user-agent"))

    def recorded(self) -> "Actor":
        """The actor as the audit trail records it (values cut to the columns' sizes)."""
        ip, agent = self.ip_address, self.user_agent
        return replace(
            self, ip_address=ip[:45] if ip else None, user_agent=agent[:1024] if agent else None
        )


class StoredKey(Protocol):
    """What authentication needs of a stored, live API key."""

    @property
    def id(self) -> UUID: ...
    @property
    def tenant_id(self) -> UUID: ...
    @property
    def prefix(self) -> str: ...
    @property
    def scopes(self) -> list[str]: ...


class KeyResolver(Protocol):
    async def resolve(self, presented: str | None) -> StoredKey:
        """The live key matching the presented one, or Unauthorized saying why not."""
        ...


@dataclass(frozen=True)
class TenantContext:
    """The authenticated caller: a tenant, through one of its keys, with that key's scopes."""

    tenant_id: UUID
    key_id: UUID
    scopes: frozenset[str]
    actor: Actor


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request presents: `X-API-Key`, else an `Authorization: Bearer` token.

    `headers` is case-insensitive (Starlette's); of a repeated header the first counts.
    """
    if api_key := headers.get("x-api-key"):
        return api_key
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    return credentials if scheme.lower() == "bearer" and credentials else None


class AuthThrottle(Protocol):
    """What authentication needs of the rate limiter (app/core/limits.py)."""

    async def refuse_blocked_client(self, client: str | None) -> None: ...
    async def failed_auth(self, client: str | None) -> None: ...
    async def charge_key(self, key_id: str, writing: bool) -> None: ...


async def tenant_context(
    keys: KeyResolver,
    headers: Mapping[str, str],
    client_host: str | None,
    throttle: AuthThrottle,
    count_failure: bool = True,
) -> TenantContext:
    """The caller of a request with these headers, or Unauthorized (counted against the
    client's address when a key was presented), or TooManyRequests for an address that
    failed too often."""
    presented = presented_key(headers)
    await throttle.refuse_blocked_client(client_host)
    try:
        key = await keys.resolve(presented)
    except Unauthorized:
        if presented is not None and count_failure:
            await throttle.failed_auth(client_host)
        raise
    actor = Actor(f"key:{key.prefix}", client_host, headers.get("user-agent"))
    return TenantContext(key.tenant_id, key.id, frozenset(key.scopes), actor)


def check_scope(context: TenantContext, scope: Scope) -> TenantContext:
    """The context itself when its key holds `scope`; Forbidden otherwise."""
    if scope not in context.scopes:
        raise Forbidden(f"API key lacks the '{scope}' scope")
    return context


async def authenticate(
    request: Request,
    _api_key: Annotated[str | None, Depends(_api_key_header)],
    _bearer_token: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TenantContext:
    client = request.client.host if request.client else None
    state = core_state(request.app)
    context = await tenant_context(state.keys, request.headers, client, state.throttle)
    bind_request_tenant(request.state, context.tenant_id)
    return context


def require_scope(scope: Scope) -> Callable[..., Awaitable[TenantContext]]:
    async def dependency(
        request: Request, context: Annotated[TenantContext, Depends(authenticate)]
    ) -> TenantContext:
        checked = check_scope(context, scope)
        await core_state(request.app).throttle.charge_key(str(context.key_id), scope == "write")
        return checked

    return dependency


ReadTenant = Annotated[TenantContext, Depends(require_scope("read"))]
WriteTenant = Annotated[TenantContext, Depends(require_scope("write"))]
AdminTenant = Annotated[TenantContext, Depends(require_scope("admin"))]


async def require_admin_token(
    request: Request, token: Annotated[str | None, Depends(_admin_header)]
) -> Actor:
    """The operator: the `X-Admin-Token` header must match ADMIN_TOKEN (404 when unset)."""
    state = core_state(request.app)
    configured = state.settings.admin_token
    if configured is None:
        raise NotFound(ADMIN_DISABLED)
    client = request.client.host if request.client else None
    throttle: AuthThrottle = state.throttle
    await throttle.refuse_blocked_client(client)
    if not token or not hmac.compare_digest(token.encode(), configured.get_secret_value().encode()):
        if token:
            await throttle.failed_auth(client)
        raise Unauthorized("Missing or invalid admin token")
    return Actor.from_request(request, "admin")


Operator = Annotated[Actor, Depends(require_admin_token)]
