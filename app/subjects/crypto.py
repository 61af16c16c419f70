"""The cryptography of personal fields: keyed digests, data keys, AES-GCM sealing.

A data key (32 random bytes) belongs to one data subject of one tenant; it is stored wrapped
(AES-GCM) by the service key, with the tenant and subject digest as associated data, so a
wrapped key copied to another subject does not open. A sealed value is the JSON of the value,
encrypted under its subject's key with the tenant, subject and field path as associated data:
a ciphertext moved to another field or event of another subject fails to open. Digests are
HMAC-SHA256 under a key derived from the service key, so that a filter value can be matched
against a stored digest without storing the value.
"""

import base64
import hashlib
import hmac
import json
import os
from typing import Any
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE = 12


class ServiceKey:
    """The service key: wraps data keys and keys the digests."""

    def __init__(self, secret: bytes) -> None:
        self._wrap = AESGCM(secret)
        self._digest_key = hmac.new(secret, b"actionlog subject digest v1", hashlib.sha256).digest()

    def digest(self, tenant_id: UUID, value: str) -> str:
        """The keyed digest of a value of a tenant (hex, 64 characters)."""
        message = tenant_id.bytes + b"\0" + value.encode()
        return hmac.new(self._digest_key, message, hashlib.sha256).hexdigest()

    def new_wrapped_key(self, tenant_id: UUID, digest: str) -> str:
        return self.wrap(tenant_id, digest, AESGCM.generate_key(bit_length=256))

    def wrap(self, tenant_id: UUID, digest: str, key: bytes) -> str:
        nonce = os.urandom(NONCE)
        sealed = self._wrap.encrypt(nonce, key, tenant_id.bytes + digest.encode())
        return base64.b64encode(nonce + sealed).decode()

    def unwrap(self, tenant_id: UUID, digest: str, wrapped: str) -> bytes:
        raw = base64.b64decode(wrapped)
        return self._wrap.decrypt(raw[:NONCE], raw[NONCE:], tenant_id.bytes + digest.encode())


def dumps(value: Any) -> bytes:
    """Compact JSON; integers beyond 64 bits (which orjson refuses) through the standard
    library."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


def loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _aad(tenant_id: UUID, digest: str, row_id: UUID) -> bytes:
    return tenant_id.bytes + digest.encode() + row_id.bytes


def seal(key: AESGCM, tenant_id: UUID, digest: str, row_id: UUID, values: list[Any]) -> str:
    """The personal values of one row (JSON) sealed under its subject's key, bound to the
    tenant, the subject and the row."""
    nonce = os.urandom(NONCE)
    sealed = key.encrypt(nonce, dumps(values), _aad(tenant_id, digest, row_id))
    return base64.b64encode(nonce + sealed).decode()


def open_sealed(key: AESGCM, tenant_id: UUID, digest: str, row_id: UUID, sealed: str) -> Any:
    """The values sealed in `sealed`; InvalidTag when the key is not the one they were sealed
    with."""
    raw = base64.b64decode(sealed)
    return loads(key.decrypt(raw[:NONCE], raw[NONCE:], _aad(tenant_id, digest, row_id)))


__all__ = ["AESGCM", "InvalidTag", "ServiceKey", "dumps", "loads", "open_sealed", "seal"]
