"""The outbox sender: delivers stored notifications, signed, and retries with backoff.

Every worker runs one. A sender claims due deliveries (one UPDATE per tenant that checks
they are still due, so two senders never take the same one) by moving their next attempt
past the time an attempt can take, sends them, and logs each attempt with its status code
and duration. A sender that dies mid-attempt leaves the delivery to be claimed again when
that time has passed: delivery is at least once, and the unchanged `webhook-id` lets
receivers drop a repeat.

Retries follow ALERT_RETRY_SCHEDULE, seconds before each retry; the default, after the first
attempt, is 5 s, 5 min, 30 min, 2 h, 5 h, 8 h and 8 h: eight attempts over 23 h 35 min, after
which the delivery is `failed` (it can be re-sent). A 2xx answer delivers; a 410 Gone disables
the endpoint and fails the delivery at once; anything else, a timeout or a refused connection
is retried. Redirects are not followed.
"""

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
from sqlalchemy import Table, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.alerts import signing
from app.alerts.models import AlertDelivery, AlertDeliveryAttempt, WebhookEndpoint
from app.alerts.repository import claim_due, endpoint_of
from app.alerts.targets import UnsafeTarget, check_target
from app.core.config import Settings
from app.core.db import new_id, utcnow
from app.core.tenancy import tenant_connection, tenant_transaction

logger = logging.getLogger("actionlog.alerts")
BATCH = 20
MAX_BACKOFF = 300.0
D = cast(Table, AlertDelivery.__table__)
E = cast(Table, WebhookEndpoint.__table__)
ATTEMPTS = cast(Table, AlertDeliveryAttempt.__table__)


class OutboxSender:
    def __init__(
        self, engine: AsyncEngine, settings: Settings, queue_engine: AsyncEngine | None = None
    ) -> None:
        self.engine = engine
        # The outbox is one queue across tenants: due deliveries are claimed as the login role
        # (which row-level security does not hold); each one is then read and updated as the
        # service role, under its tenant's setting.
        self.queue_engine = queue_engine or engine
        self.settings = settings
        self.lease = timedelta(seconds=settings.webhook_timeout_seconds * 2 + 30)
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None

    def wake(self) -> None:
        self._wake.set()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.settings.webhook_timeout_seconds,
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                while await self.run_once() == BATCH:
                    pass
            except Exception as exc:
                failures += 1
                if failures == 1:
                    logger.warning("webhook sender failed: %s: %s", type(exc).__name__, exc)
            else:
                failures = 0
            delay = min(self.settings.alert_send_seconds * 2 ** min(failures, 12), MAX_BACKOFF)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def run_once(self) -> int:
        """Send the deliveries due now; how many were attempted."""
        now = utcnow()
        async with self.queue_engine.begin() as connection:
            rows = await claim_due(connection, now, now + self.lease, BATCH)
        await asyncio.gather(*(self.attempt(row) for row in rows))
        return len(rows)

    async def attempt(self, delivery: Any) -> int | None:
        """One attempt at a claimed delivery; the receiver's status code (None: no answer)."""
        async with tenant_connection(self.engine, delivery.tenant_id) as connection:
            endpoint = await endpoint_of(connection, delivery.tenant_id, delivery.endpoint_id)
        started, at = time.monotonic(), utcnow()
        code: int | None = None
        if endpoint is None:
            error: str | None = "the webhook endpoint was deleted"
        elif not endpoint.enabled:
            error = f"the webhook endpoint is disabled ({endpoint.disabled_reason})"
        else:
            code, error = await self._send(endpoint, delivery)
        duration = round((time.monotonic() - started) * 1000)
        final = endpoint is None or not endpoint.enabled
        await self._record(delivery, endpoint, at, code, duration, error, final)
        return code

    async def _send(self, endpoint: Any, delivery: Any) -> tuple[int | None, str | None]:
        try:
            await check_target(endpoint.url, self.settings.webhook_allow_private)
        except UnsafeTarget as exc:
            return None, str(exc)
        keys = [endpoint.secret]
        if (
            endpoint.previous_secret
            and (endpoint.previous_secret_expires_at or utcnow()) > utcnow()
        ):
            keys.append(endpoint.previous_secret)
        body = delivery.payload.encode()
        headers = signing.headers(keys, delivery.message_id, int(time.time()), body)
        try:
            response = await self._http().post(endpoint.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:1024]
        ok = 200 <= response.status_code < 300
        return response.status_code, None if ok else f"HTTP {response.status_code}"

    async def _record(
        self,
        delivery: Any,
        endpoint: Any,
        at: datetime,
        code: int | None,
        duration: int,
        error: str | None,
        final: bool,
    ) -> None:
        attempts = delivery.attempts + 1
        delays = self.settings.alert_retry_delays
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status_code": code,
            "last_error": error,
            "last_duration_ms": duration,
        }
        if code is not None and 200 <= code < 300:
            values.update(status="delivered", delivered_at=utcnow(), next_attempt_at=None)
        elif final or code == 410 or attempts > len(delays):
            values.update(status="failed", next_attempt_at=None)
        else:
            values.update(next_attempt_at=utcnow() + timedelta(seconds=delays[attempts - 1]))
        key = (D.c.tenant_id == delivery.tenant_id) & (D.c.id == delivery.id)
        async with tenant_transaction(self.engine, delivery.tenant_id) as connection:
            await connection.execute(
                insert(ATTEMPTS).values(
                    tenant_id=delivery.tenant_id,
                    id=new_id(),
                    delivery_id=delivery.id,
                    attempted_at=at,
                    status_code=code,
                    duration_ms=duration,
                    error=error,
                )
            )
            await connection.execute(update(D).where(key).values(**values))
            if code == 410 and endpoint is not None:
                await connection.execute(
                    update(E)
                    .where((E.c.tenant_id == endpoint.tenant_id) & (E.c.id == endpoint.id))
                    .values(
                        enabled=False,
                        disabled_reason=f"the receiver answered 410 Gone at {at.isoformat()}",
                        updated_at=utcnow(),
                    )
                )
