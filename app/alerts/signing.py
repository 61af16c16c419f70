"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

A secret is `whsec_` followed by the base64 of 24 random bytes. Each attempt is signed anew:
`webhook-signature` is `v1,` and the base64 HMAC-SHA256, keyed with the secret's bytes, of
`{webhook-id}.{webhook-timestamp}.{body}`. `webhook-id` stays the same on every retry of a
notification, so a receiver can drop repeats. After a rotation the previous secret signs too
(space-separated signatures) for SECRET_OVERLAP, so receivers can switch without a gap.
"""

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta

PREFIX = "whsec_"
SECRET_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(16)


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secrets_: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt, signed with each of the given secrets."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets_),
        "content-type": "application/json",
        "user-agent": "actionlog-webhooks/1",
    }
