"""Viewer tokens as text: `alv_<tenant>_<id>_<secret>`, only the secret's SHA-256 stored.

The tenant and token ids travel in the token (they are not secret) so that the token's row
is found under the tenant's row-level security setting without a cross-tenant lookup; the
secret (192 random bits) is compared with the stored digest in constant time, so a token that
was altered in any part is refused.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from uuid import UUID

PREFIX = "alv_"


@dataclass(frozen=True)
class PresentedToken:
    tenant_id: UUID
    token_id: UUID
    secret: str

    def matches(self, secret_hash: str) -> bool:
        return hmac.compare_digest(digest(self.secret), secret_hash)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def mint(tenant_id: UUID, token_id: UUID) -> tuple[str, str]:
    """A new token and the digest to store."""
    secret = secrets.token_urlsafe(24)
    return f"{PREFIX}{tenant_id.hex}_{token_id.hex}_{secret}", digest(secret)


def parse(text: str | None) -> PresentedToken | None:
    """The parts of a presented token, or None when it is not shaped like one."""
    if not text or not text.startswith(PREFIX) or len(text) > 200:
        return None
    parts = text[len(PREFIX) :].split("_", 2)
    if len(parts) != 3 or not parts[2]:
        return None
    try:
        return PresentedToken(UUID(hex=parts[0]), UUID(hex=parts[1]), parts[2])
    except ValueError:
        return None
