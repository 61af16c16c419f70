"""The viewer session cookie: which token opened the session, until when, and its look.

Signed with the console's secret under its own purpose (app/console/session.py), HttpOnly,
`Path=/ui/embed` so that no other console page ever receives it. The token behind it is
re-read on every request, so revoking the token ends its sessions at once.

Inside an iframe of another site a cookie is a third-party cookie: it must be `SameSite=None;
Secure`, and is also `Partitioned` (CHIPS), kept per embedding site, which browsers that block
other third-party cookies still accept. Secure cookies need HTTPS, except on localhost and
127.0.0.1, which browsers treat as secure: that is the plain-http development setup
(docs/viewer-links.md). Opened on its own or from its own origin, the cookie is
`SameSite=Lax` (a Strict cookie would not follow the first redirect of a link opened from
another site) and Secure over HTTPS.
"""

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from fastapi import Request, Response

from app.console.session import SessionSigner

COOKIE_NAME = "actionlog_viewer"
COOKIE_PATH = "/ui/embed"
PURPOSE = b"viewer-session"
THEMES = ("light", "dark")
ACCENT = re.compile(r"^#?([0-9a-fA-F]{6})$")


@dataclass(frozen=True)
class ViewerSession:
    tenant_id: UUID
    token_id: UUID
    expires_at: int  # Unix seconds
    theme: str = "light"
    accent: str | None = None  # six hex digits


def look(theme: str | None, accent: str | None) -> tuple[str, str | None]:
    """The theme and accent colour of query parameters (anything else is the default)."""
    match = ACCENT.match(accent or "")
    return (theme if theme in THEMES else "light"), (match.group(1).lower() if match else None)


def issue(signer: SessionSigner, session: ViewerSession) -> str:
    payload = {
        "t": session.tenant_id.hex,
        "i": session.token_id.hex,
        "e": session.expires_at,
        "th": session.theme,
        "ac": session.accent,
        "n": secrets.token_hex(8),
    }
    return signer.seal(PURPOSE, payload)


def read(signer: SessionSigner, text: str | None) -> ViewerSession | None:
    """The session of a cookie, or None when missing, forged, malformed or expired."""
    data: Any = signer.unseal(PURPOSE, text)
    if data is None:
        return None
    try:
        session = ViewerSession(
            UUID(hex=data["t"]), UUID(hex=data["i"]), int(data["e"]), *look(data["th"], data["ac"])
        )
    except (KeyError, TypeError, ValueError):
        return None
    return session if session.expires_at > time.time() else None


def _cross_site(request: Request, embed_origin: str | None) -> bool:
    if embed_origin is None:
        return False
    return urlsplit(embed_origin).hostname != request.url.hostname


def set_cookie(
    response: Response, request: Request, value: str, max_age: int, embed_origin: str | None
) -> None:
    if not _cross_site(request, embed_origin):
        response.set_cookie(
            COOKIE_NAME, value, max_age=max_age, path=COOKIE_PATH,
            secure=request.url.scheme == "https", httponly=True, samesite="lax",
        )  # fmt: skip
        return
    # Written by hand: the standard library writes `Partitioned` only from Python 3.14.
    response.headers.append(
        "set-cookie",
        f"{COOKIE_NAME}={value}; Max-Age={max_age}; Path={COOKIE_PATH}; HttpOnly; Secure; "
        "SameSite=None; Partitioned",
    )
