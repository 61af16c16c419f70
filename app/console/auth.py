"""Who is using the console: the key named by the session cookie, checked on every request.

The key is looked up exactly as the API looks up a presented key, so a revoked or expired key,
or one that lost the `read` scope, is refused at once (see app/console/session.py for why the
cookie itself is safe).
"""

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request

from app.console.session import COOKIE_NAME, ConsoleSession, SessionSigner
from app.console.state import console_signer
from app.core.auth import Actor, TenantContext
from app.core.db import utcnow
from app.core.errors import Forbidden
from app.core.tenancy import bind_request_tenant
from app.tenants.state import tenants_state


class SignInRequired(Exception):
    """The request has no live console session: the console answers with the sign-in page."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message)
        self.message = message


def signer_of(request: Request) -> SessionSigner:
    return console_signer(request.app)


def live_key_problem(key: Any) -> str | None:
    """Why a stored key cannot browse the console (None when it can)."""
    if key.revoked_at is not None:
        return "This API key has been revoked."
    if key.expires_at is not None and key.expires_at <= utcnow():
        return "This API key has expired."
    if "read" not in key.scopes:
        return "This API key lacks the 'read' scope, which the console needs to show data."
    return None


async def current_session(request: Request) -> ConsoleSession:
    """The request's console session, or SignInRequired."""
    session = signer_of(request).read(request.cookies.get(COOKIE_NAME))
    if session is None and "token" in request.query_params:
        # A viewer link's token opens its embedded console (/ui/embed) and nothing else.
        raise SignInRequired("A viewer token opens only its embedded console, not this page.")
    if session is None:
        raise SignInRequired()
    request.state.console_session = session  # for the sign-out form's token
    return session


async def console_tenant(
    request: Request, session: Annotated[ConsoleSession, Depends(current_session)]
) -> TenantContext:
    """The tenant whose data the console shows, from the signed-in key (re-checked now)."""
    key = await tenants_state(request.app).keys.find(session.key_prefix)
    if key is None or key.id != session.key_id:
        raise SignInRequired("Your session's API key no longer exists. Sign in again.")
    if (problem := live_key_problem(key)) is not None:
        raise SignInRequired(problem)
    actor = Actor.from_request(request, f"key:{key.prefix}")
    bind_request_tenant(request.state, key.tenant_id)
    return TenantContext(key.tenant_id, key.id, frozenset(key.scopes), actor)


ConsoleTenant = Annotated[TenantContext, Depends(console_tenant)]
CurrentSession = Annotated[ConsoleSession, Depends(current_session)]


def check_same_origin(request: Request) -> None:
    """Refuse a POST that a browser says came from another site (CSRF, login CSRF)."""
    origin = request.headers.get("origin")
    if origin is not None:
        expected = urlsplit(str(request.base_url))
        given = urlsplit(origin)
        if (given.scheme, given.netloc) != (expected.scheme, expected.netloc):
            raise Forbidden("This form was sent from another site; open the console and retry.")
        return
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise Forbidden("This form was sent from another site; open the console and retry.")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if not target or not (target == "/ui" or target.startswith(("/ui/", "/ui?"))):
        return "/ui/actions"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return "/ui/actions"
    return target
