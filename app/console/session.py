"""Console sign-in: a signed, expiring, HttpOnly, SameSite=Strict cookie that names an API key.

Why this is safe:

- The key is typed once into a POSTed form field (`api_key`); it never travels in a URL, is
  never logged (the access log holds paths only) and is never stored: the cookie holds the
  key's id and public prefix, an expiry and a random nonce, signed with HMAC-SHA256 under
  `CONSOLE_SECRET`. A forged or altered cookie fails the signature; an old one its expiry.
- Every request re-reads the key (through the same batched lookup as the API), so a revoked
  or expired key ends its console sessions at once, and a key that lost `read` is refused.
- HttpOnly keeps the cookie from scripts; `Secure` is set when the console is served over
  HTTPS; `Path=/ui` keeps it off the API. SameSite=Strict means no other site can make the
  browser send it, so a cross-site link or form reaches the console signed out.
- CSRF: the console changes nothing but its own session (every view is a GET that reads).
  The two POSTs, sign-in and sign-out, refuse a request whose `Origin` (or, without one,
  `Sec-Fetch-Site`) says it came from another site, which also stops another site from
  signing a visitor in with the attacker's key; sign-out also needs a form token derived from
  the session's nonce. No other origin can read the cookie or the pages (no CORS headers;
  the CSP forbids framing unless `CONSOLE_FRAME_ANCESTORS` allows it).

Without `CONSOLE_SECRET`, each process draws a random secret at start (sign-ins end with a
restart); `actionlog serve` draws one for all its workers. Several hosts need the setting.
"""

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

COOKIE_NAME = "actionlog_console"
COOKIE_PATH = "/ui"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class ConsoleSession:
    """What a console cookie says: which key signed in, until when, and the session's nonce."""

    key_id: UUID
    key_prefix: str
    expires_at: int  # Unix seconds
    nonce: str


class SessionSigner:
    """Issues and checks console cookies and the sign-out form token."""

    def __init__(self, secret: bytes, lifetime_seconds: int) -> None:
        if len(secret) < 16:
            raise ValueError("the console secret must be at least 16 bytes")
        self._secret = secret
        self.lifetime_seconds = lifetime_seconds

    def _mac(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self._secret, purpose + b"\0" + data, hashlib.sha256).digest()

    def issue(self, key_id: UUID, key_prefix: str, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + self.lifetime_seconds
        payload = {"k": str(key_id), "p": key_prefix, "e": expires, "n": secrets.token_hex(16)}
        body = json.dumps(payload, separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self._mac(b'session', body))}"

    def read(self, cookie: str | None, now: float | None = None) -> ConsoleSession | None:
        """The session in a cookie, or None when it is missing, forged, malformed or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        body_text, mac_text = cookie.split(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._mac(b"session", body)):
            return None
        try:
            data = json.loads(body)
            session = ConsoleSession(UUID(data["k"]), str(data["p"]), int(data["e"]), data["n"])
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires_at <= (now if now is not None else time.time()):
            return None
        return session

    def seal(self, purpose: bytes, payload: dict[str, Any]) -> str:
        """Signed text of `payload` for another use of the console's secret (`purpose` keeps
        each use's signatures apart: a viewer cookie is never a sign-in cookie)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self._mac(purpose, body))}"

    def unseal(self, purpose: bytes, text: str | None) -> dict[str, Any] | None:
        """The payload of `seal`'s text, or None when it is missing, forged or malformed."""
        if not text or text.count(".") != 1:
            return None
        body_text, mac_text = text.split(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            return None
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None

    def form_token(self, session: ConsoleSession) -> str:
        """The token a sign-out form must carry: bound to this session, unknown to other sites."""
        return _b64(self._mac(b"csrf", session.nonce.encode()))

    def check_form_token(self, session: ConsoleSession, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token, self.form_token(session))
