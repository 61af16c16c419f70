"""API keys: how they are made, stored and found again.

Keys look like `alk_<12 hex>_<secret>`; the `alk_<12 hex>` part is the stored, displayable
prefix used to find the key, and only the SHA-256 of the whole key is kept, compared in
constant time. Keys carry 190 random bits, so a slow hash would add nothing.
"""

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import KeptConnection, utcnow
from app.core.errors import Unauthorized
from app.tenants.repository import find_api_keys_by_prefix

KEY_PREFIX = "alk_"


@dataclass(frozen=True)
class NewKey:
    plaintext: str
    prefix: str
    key_hash: str


def generate_api_key() -> NewKey:
    prefix = KEY_PREFIX + secrets.token_hex(6)
    plaintext = f"{prefix}_{secrets.token_urlsafe(24)}"
    return NewKey(plaintext=plaintext, prefix=prefix, key_hash=hash_api_key(plaintext))


def hash_api_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def key_prefix(plaintext: str) -> str | None:
    """The lookup prefix of a presented key, or None when it is not shaped like one of ours."""
    end = len(KEY_PREFIX) + 12
    prefix, rest = plaintext[:end], plaintext[end:]
    return prefix if prefix.startswith(KEY_PREFIX) and len(rest) > 1 and rest[0] == "_" else None


class KeyLookups:
    """Finds keys by prefix, with one query for all the requests that arrive together.

    Under load many requests authenticate at once, mostly with the same few keys. A request
    waits for the next query to start, never for one already running, so its answer is read
    after it arrived: a key revoked before a request arrives fails that request, as with a
    query of its own. The query runs in autocommit, outside any request's transaction, so a
    request holds no connection for its authentication (a write may wait on the group-commit
    writer, which needs a connection of the pool).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        # On PostgreSQL the lookups keep a connection of their own: their queries run one at a
        # time, and a pool checkout per query cost more than the query. SQLite's pool holds a
        # single connection, which the lookups must share.
        self._kept = KeptConnection(self.engine) if engine.dialect.name == "postgresql" else None
        self._waiting: dict[str, list[asyncio.Future[Any]]] = {}
        self._runner: asyncio.Task[None] | None = None

    async def resolve(self, presented: str | None) -> Any:
        """The stored, live key matching the presented one, or Unauthorized saying why not."""
        if not presented:
            raise Unauthorized("Missing API key: send it as X-API-Key or Authorization: Bearer")
        prefix = key_prefix(presented)
        key = await self.find(prefix) if prefix else None
        if key is None or not hmac.compare_digest(key.key_hash, hash_api_key(presented)):
            raise Unauthorized("Invalid API key")
        if key.revoked_at is not None:
            raise Unauthorized("API key has been revoked")
        if key.expires_at is not None and key.expires_at <= utcnow():
            raise Unauthorized("API key has expired")
        return key

    async def find(self, prefix: str) -> Any:
        """The stored key with this prefix (a row), or None."""
        found = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(prefix, []).append(found)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await found

    async def close(self) -> None:
        """Give the kept connection back (at shutdown)."""
        if self._kept is not None:
            await self._kept.close()

    async def _query(self, prefixes: list[str]) -> dict[str, Any]:
        if self._kept is None:
            async with self.engine.connect() as connection:
                return await find_api_keys_by_prefix(connection, prefixes)
        if self._kept.held is not None:
            try:
                return await find_api_keys_by_prefix(self._kept.held, prefixes)
            except Exception:
                # the kept connection broke (a database restart, say): read again on a new one
                await self._kept.drop()
        try:
            return await find_api_keys_by_prefix(await self._kept.get(), prefixes)
        except Exception:
            await self._kept.drop()
            raise

    async def _run(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            try:
                keys = await self._query(list(batch))
            except Exception as exc:
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for prefix, futures in batch.items():
                for future in futures:
                    if not future.done():
                        future.set_result(keys.get(prefix))
