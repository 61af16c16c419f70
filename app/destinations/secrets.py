"""Secrets of destinations (tokens, API keys, signing secrets), encrypted at rest with AES-GCM.

The key: SECRETS_ENCRYPTION_KEY when set (base64 of 32 random bytes, from a secret store: then
whoever reads the database alone cannot read the secrets). Unset, the first process to start
generates one and stores it in `secret_keys`; every other worker and host reads the same row
(insert-if-absent, then read), as the audit signing key is kept (app/audits/signing.py).

A ciphertext is `v1.<key id>.<base64 of nonce and sealed JSON>`; the key id (the first 16 hex
digits of the key's SHA-256) says which key sealed it, so secrets sealed with the generated
key still open after SECRETS_ENCRYPTION_KEY is set (new ones use the setting's key). The
destination's tenant and id are the associated data: a sealed value copied to another row
does not open there.
"""

import asyncio
import base64
import binascii
import hashlib
import os
from typing import Any
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import upsert_insert, utcnow
from app.destinations.models import SecretKey

VERSION = "v1"
GENERATED = "generated"


class SecretsUnreadable(Exception):
    """A sealed value that no known key opens (the key was changed or lost)."""


def parse_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        raise ValueError("SECRETS_ENCRYPTION_KEY must be base64 of 32 bytes") from None
    if len(key) != 32:
        raise ValueError("SECRETS_ENCRYPTION_KEY must be base64 of 32 bytes")
    return key


def key_id_of(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


class KeyRing:
    """The key that seals new secrets and every key that may open old ones."""

    def __init__(self, primary: bytes, others: list[bytes]) -> None:
        self.primary = primary
        self.keys = {key_id_of(key): key for key in [*others, primary]}

    def seal(self, values: dict[str, Any], tenant_id: UUID, destination_id: UUID) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.primary).encrypt(
            nonce, orjson.dumps(values), _associated(tenant_id, destination_id)
        )
        body = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{VERSION}.{key_id_of(self.primary)}.{body}"

    def open(self, text: str, tenant_id: UUID, destination_id: UUID) -> dict[str, Any]:
        try:
            version, key_id, body = text.split(".", 2)
            key = self.keys[key_id]
            raw = base64.urlsafe_b64decode(body)
            plain = AESGCM(key).decrypt(raw[:12], raw[12:], _associated(tenant_id, destination_id))
        except (ValueError, KeyError, InvalidTag, binascii.Error):
            raise SecretsUnreadable(
                "the destination's secrets cannot be decrypted with the configured keys "
                "(SECRETS_ENCRYPTION_KEY); set them again"
            ) from None
        values = orjson.loads(plain)
        assert version == VERSION and isinstance(values, dict)
        return values


def _associated(tenant_id: UUID, destination_id: UUID) -> bytes:
    return f"{tenant_id}/{destination_id}".encode()


async def load_key_ring(engine: AsyncEngine, setting: str | None) -> KeyRing:
    """The ring every process shares: the setting's key first, else the stored generated one."""
    async with engine.begin() as connection:
        stored = await connection.scalar(select(SecretKey.key).where(SecretKey.name == GENERATED))
        if stored is None and not setting:
            candidate = base64.b64encode(os.urandom(32)).decode()
            await connection.execute(
                upsert_insert(connection.dialect.name, SecretKey)
                .values(name=GENERATED, key=candidate, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=["name"])
            )
            stored = await connection.scalar(
                select(SecretKey.key).where(SecretKey.name == GENERATED)
            )
    others = [parse_key(stored)] if stored else []
    if setting:
        return KeyRing(parse_key(setting), others)
    return KeyRing(others[0], [])


class KeyRingSource:
    """The process's key ring, loaded at first use (the database may be down at start)."""

    def __init__(self, engine: AsyncEngine, setting: str | None) -> None:
        self.engine = engine
        self.setting = setting
        self._ring: KeyRing | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> KeyRing:
        if self._ring is None:
            async with self._lock:
                if self._ring is None:
                    self._ring = await load_key_ring(self.engine, self.setting)
        return self._ring


def full_config(ring: KeyRing, row: Any) -> dict[str, Any]:
    """A destination's config with its secrets opened (for sending, never for reading out)."""
    config = dict(row.config or {})
    if row.secrets:
        config.update(ring.open(row.secrets, row.tenant_id, row.id))
    return config
