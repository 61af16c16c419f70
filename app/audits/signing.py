"""The Ed25519 key that signs audit checkpoints, and checking a checkpoint's signature.

Where the key lives: the AUDIT_SIGNING_KEY setting when given (base64 of the 32-byte private key, or
a PKCS#8 PEM) — the choice for production, from a secret store, because then whoever can
write to the database cannot sign a checkpoint. Without it, the first process to start
generates a key and stores it in `audit_signing_keys`; every other worker and host reads the
same row (insert-if-absent, then read), so all of them sign with one key and no file has to
be shared. Either way the public half of every key that ever signed is kept there, so old
checkpoints verify after a key changes, and `GET /api/v1/logs/audits/public-key` publishes it.
An auditor should keep the published key (or its `key_id`) outside the service: a database
writer could otherwise swap the generated key and re-sign forged checkpoints.

What is signed: the canonical JSON (`app/audits/chain.py`) of the checkpoint's tenant,
sequence, hash, time and key id, after a domain-separation prefix.
"""

import asyncio
import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audits.chain import canonical_json
from app.audits.models import AuditSigningKey
from app.core.db import upsert_insert, utcnow

SIGNED_PREFIX = b"actionlog audit checkpoint v1\n"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public: bytes) -> str:
    """A key's id: the SHA-256 of its raw 32 public bytes, in hex."""
    return hashlib.sha256(public).hexdigest()


def checkpoint_message(
    tenant_id: UUID, sequence: int, hash_: str, created_at: datetime, key_id: str
) -> bytes:
    fields = {
        "tenant_id": tenant_id,
        "sequence": sequence,
        "hash": hash_,
        "created_at": created_at,
        "key_id": key_id,
    }
    return SIGNED_PREFIX + canonical_json(fields).encode()


def parse_private_key(text: str) -> Ed25519PrivateKey:
    """A key from the setting: a PKCS#8 PEM, or base64 of the 32-byte private key."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("AUDIT_SIGNING_KEY must be an Ed25519 key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("AUDIT_SIGNING_KEY is neither a PEM nor base64") from None
    if len(raw) != 32:
        raise ValueError("AUDIT_SIGNING_KEY must be 32 bytes (base64) or a PEM")
    return Ed25519PrivateKey.from_private_bytes(raw)


@dataclass(frozen=True)
class Signer:
    """The current signing key."""

    private: Ed25519PrivateKey
    key_id: str
    public_key: str  # base64 of the raw 32 bytes

    @classmethod
    def of(cls, private: Ed25519PrivateKey) -> "Signer":
        public = raw_public(private.public_key())
        return cls(private, key_id_of(public), _b64(public))

    def sign(self, message: bytes) -> str:
        return _b64(self.private.sign(message))


def verify_signature(public_key_b64: str, signature_b64: str, message: bytes) -> bool:
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
        public.verify(base64.b64decode(signature_b64), message)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


async def load_signer(session: AsyncSession, setting: str | None) -> Signer:
    """The signer every process shares: the setting's key, else the stored generated one.

    Concurrent first starts queue on a lock (an advisory lock on PostgreSQL, the write lock
    on SQLite), so the second one reads the key the first one stored.
    """
    dialect = (await session.connection()).dialect.name
    if not setting:
        await _serialise_first_starts(session, dialect)
    if setting:
        signer = Signer.of(parse_private_key(setting))
        private = None
    else:
        stored = await session.scalar(
            select(AuditSigningKey)
            .where(AuditSigningKey.generated.is_(True), AuditSigningKey.private_seed.is_not(None))
            .order_by(AuditSigningKey.created_at)
            .limit(1)
        )
        if stored is not None and stored.private_seed is not None:
            stored_bytes = base64.b64decode(stored.private_seed)
            return Signer.of(Ed25519PrivateKey.from_private_bytes(stored_bytes))
        signer = Signer.of(Ed25519PrivateKey.generate())
        private = _b64(
            signer.private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        )
    await session.execute(
        upsert_insert(dialect, AuditSigningKey)
        .values(
            key_id=signer.key_id,
            public_key=signer.public_key,
            private_seed=private,
            generated=private is not None,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["key_id"])
    )
    return signer


_KEY_LOCK = 0x6B6579  # pg_advisory_xact_lock's key for "generate the signing key"


async def _serialise_first_starts(session: AsyncSession, dialect: str) -> None:
    if dialect == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _KEY_LOCK})
    else:  # an UPDATE, even of no row, takes SQLite's write lock until the transaction ends
        await session.execute(
            update(AuditSigningKey)
            .where(func.length(AuditSigningKey.key_id) < 0)
            .values(generated=AuditSigningKey.generated)
            .execution_options(synchronize_session=False)
        )


async def public_keys(session: AsyncSession) -> dict[str, str]:
    """Every key that may have signed a checkpoint: key id -> base64 public key."""
    rows = await session.execute(select(AuditSigningKey.key_id, AuditSigningKey.public_key))
    return {row.key_id: row.public_key for row in rows}


def public_pem(public_key_b64: str) -> str:
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class SignerSource:
    """The process's signer, loaded once (at start, or at first use if the database was down)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], setting: str | None) -> None:
        self.sessionmaker = sessionmaker
        self.setting = setting
        self._signer: Signer | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Signer:
        if self._signer is None:
            async with self._lock:
                if self._signer is None:
                    async with self.sessionmaker() as session, session.begin():
                        self._signer = await load_signer(session, self.setting)
        return self._signer
