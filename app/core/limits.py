"""Rate limits: requests per API key, and failed authentications per client address.

`RATE_LIMIT_PER_MINUTE` requests per key per minute (0, the default, is off), optionally
`RATE_LIMIT_WRITE_PER_MINUTE` for the recording routes; and `FAILED_AUTH_PER_MINUTE` wrong
keys or admin tokens per client address (0 is off), after which that address is refused with
429 until the window moves on, right key or not — so keys and the admin token cannot be
guessed at speed. A request over a limit is a 429 with `Retry-After`; every limited response
carries the IETF `RateLimit-Policy` and `RateLimit` headers
(draft-ietf-httpapi-ratelimit-headers: `"key";q=100;w=60` and `"key";r=42;t=17`).

Counting is the `limits` library's sliding-window counter (two counters per window, no list of
timestamps). The counters live in this process by default — each worker counts alone, so with
N workers a key gets up to N times the limit — and in Redis when `REDIS_URL` is set, where
every worker and host shares them. If Redis cannot be reached, requests are let through and a
warning is logged: the limits protect the service, they must not take it down.

Failed authentications are a limit per address, whatever worker a guess lands on. With Redis
every worker counts in the same counters, so `FAILED_AUTH_PER_MINUTE` holds as written. Without
it, each of the `WORKERS` processes allows `FAILED_AUTH_PER_MINUTE // WORKERS` failures (at
least 1), so that all of them together allow no more than the limit (a limit below the number
of workers is then one failure per worker): set `WORKERS` to the number of processes serving.

Every request asks whether its address is blocked, so that question is kept cheap: with the
counters in this process, an address that has not failed here within two windows (the
sliding window's reach) cannot be over the limit, and is let through without a look at the
counters. With Redis the counters are asked, since other workers may have counted failures.
"""

import logging
import math
import time
from dataclasses import dataclass
from typing import ClassVar

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from app.core.config import Settings
from app.core.errors import ServiceError
from app.core.middleware import rate_limit_headers_var

logger = logging.getLogger("actionlog.limits")
WINDOW_SECONDS = 60
_ADDRESSES_KEPT = 100_000


class TooManyRequests(ServiceError):
    status_code = 429
    default_detail = "Too many requests, retry later"
    headers: ClassVar[dict[str, str] | None] = None


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    policy: str
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        return (
            (b"ratelimit-policy", f'"{self.policy}";q={self.limit};w={WINDOW_SECONDS}'.encode()),
            (
                b"ratelimit",
                f'"{self.policy}";r={self.remaining};t={self.reset_seconds}'.encode(),
            ),
        )

    def refusal(self, detail: str) -> TooManyRequests:
        error = TooManyRequests(detail)
        error.extra_headers = {k.decode(): v.decode() for k, v in self.headers()}
        error.extra_headers["Retry-After"] = str(max(1, self.reset_seconds))
        return error


class Throttle:
    def __init__(self, settings: Settings) -> None:
        url = settings.redis_url
        storage_url = "async+memory://" if url is None else "async+" + url
        self._limiter = SlidingWindowCounterRateLimiter(storage_from_string(storage_url))
        self._per_key = _per_minute(settings.rate_limit_per_minute)
        write = settings.rate_limit_write_per_minute
        self._per_write_key = self._per_key if write is None else _per_minute(write)
        self._failed_auth = _per_minute(failed_auth_limit(settings))
        # in-process counters only: when each address last failed here (bounded)
        self._last_failures: dict[str, float] | None = {} if url is None else None

    async def charge_key(self, key_id: str, writing: bool) -> None:
        """Count one request of a key; TooManyRequests when it is over its limit."""
        item = self._per_write_key if writing else self._per_key
        if item is None:
            return
        policy = "write" if writing and self._per_write_key is not self._per_key else "key"
        verdict = await self._hit(item, policy, ("key", policy, key_id))
        rate_limit_headers_var.set(verdict.headers())
        if not verdict.allowed:
            raise verdict.refusal(f"Rate limit of {item.amount} requests per minute exceeded")

    async def refuse_blocked_client(self, client: str | None) -> None:
        """TooManyRequests when `client` has failed authentication too often lately."""
        if self._failed_auth is None or client is None:
            return
        if self._last_failures is not None:
            failed = self._last_failures.get(client)
            if failed is None or time.monotonic() - failed > 2 * WINDOW_SECONDS:
                return
        verdict = await self._stats(self._failed_auth, "auth", ("auth", client))
        if verdict is not None and verdict.remaining <= 0:
            raise verdict.refusal("Too many failed authentications from this address")

    async def failed_auth(self, client: str | None) -> None:
        """Count one failed authentication of `client`."""
        if self._failed_auth is not None and client is not None:
            if self._last_failures is not None:
                if len(self._last_failures) >= _ADDRESSES_KEPT:
                    self._forget_old_failures()
                self._last_failures[client] = time.monotonic()
            await self._hit(self._failed_auth, "auth", ("auth", client))

    def _forget_old_failures(self) -> None:
        assert self._last_failures is not None
        horizon = time.monotonic() - 2 * WINDOW_SECONDS
        recent = {a: t for a, t in self._last_failures.items() if t >= horizon}
        # still full of recent failures (a spray from many addresses): keep checking them all
        self._last_failures = recent if len(recent) < _ADDRESSES_KEPT else None

    async def _hit(self, item: RateLimitItem, policy: str, ids: tuple[str, ...]) -> Verdict:
        try:
            allowed = await self._limiter.hit(item, *ids)
            stats = await self._limiter.get_window_stats(item, *ids)
        except Exception as exc:  # the limits' store is down: let the request through
            logger.warning("rate limit store unavailable: %s", exc.__class__.__name__)
            return Verdict(True, policy, item.amount, item.amount, WINDOW_SECONDS)
        return _verdict(allowed, policy, item, stats.remaining, stats.reset_time)

    async def _stats(
        self, item: RateLimitItem, policy: str, ids: tuple[str, ...]
    ) -> Verdict | None:
        try:
            stats = await self._limiter.get_window_stats(item, *ids)
        except Exception as exc:
            logger.warning("rate limit store unavailable: %s", exc.__class__.__name__)
            return None
        return _verdict(stats.remaining > 0, policy, item, stats.remaining, stats.reset_time)


def _verdict(
    allowed: bool, policy: str, item: RateLimitItem, remaining: int, reset_time: float
) -> Verdict:
    reset = min(WINDOW_SECONDS, max(0, math.ceil(reset_time - time.time())))
    return Verdict(allowed, policy, item.amount, max(0, remaining), reset)


def failed_auth_limit(settings: Settings) -> int:
    """Failed authentications per address and minute that this process allows (see the
    module): the whole limit with Redis, else this worker's share of it."""
    limit = settings.failed_auth_per_minute
    if settings.redis_url is not None or limit == 0:
        return limit
    return max(1, limit // settings.workers)


def _per_minute(amount: int) -> RateLimitItem | None:
    return RateLimitItemPerMinute(amount) if amount > 0 else None
