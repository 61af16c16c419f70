"""Destinations spoken to over HTTP: a signed webhook, Splunk's HEC, Datadog's logs intake.

- `http`: POST of a JSON array of records, signed as the alert webhooks are (Standard
  Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`); the id is the batch's
  first and last stream ids, the same on every retry of the batch.
- `splunk_hec`: `POST {url}/services/collector/event` with `Authorization: Splunk <token>`,
  one event object per record (`time` in epoch seconds, `host`, `source`, `sourcetype`,
  `index`, `event`), stacked in one body as HEC accepts.
- `datadog`: `POST https://http-intake.logs.{site}/api/v2/logs` with `DD-API-KEY`, a JSON
  array of log entries (`ddsource`, `ddtags`, `hostname`, `service`, `message`: the record's
  JSON), at most 1000 per request as the intake allows.

Every target is checked against the private-address policy before each send (a name may
resolve elsewhere later; WEBHOOK_ALLOW_PRIVATE lifts it). Redirects are not followed.
"""

import time
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from app.alerts import signing
from app.alerts.targets import UnsafeTarget, check_target
from app.destinations.transports import HOSTNAME, Outcome, Record, http_outcome


class HttpPost:
    """A POST of a body to a URL, with the private-address check, as an outcome."""

    def __init__(self, url: str, timeout: float, allow_private: bool) -> None:
        self.url = url
        self.allow_private = allow_private
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)

    async def post(self, body: bytes, headers: dict[str, str]) -> Outcome:
        try:
            await check_target(self.url, self.allow_private)
        except UnsafeTarget as exc:
            return Outcome(False, error=str(exc), permanent=True)
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:1024])
        # the bytes decoded as UTF-8: `response.text` would guess the charset of each answer
        text = response.content[:2000].decode("utf-8", "replace")
        return http_outcome(response.status_code, text, response.headers.get("retry-after"))

    async def close(self) -> None:
        await self.client.aclose()


class Webhook(HttpPost):
    def __init__(self, config: dict[str, Any], timeout: float, allow_private: bool) -> None:
        super().__init__(config["url"], timeout, allow_private)
        self.secret = config.get("secret")

    async def send(self, records: Sequence[Record]) -> Outcome:
        body = ("[" + ",".join(record.json() for record in records) + "]").encode()
        message_id = f"msg_{records[0].seq}_{records[-1].seq}"
        keys = [self.secret] if self.secret else []
        headers = signing.headers(keys, message_id, int(time.time()), body)
        if not keys:
            del headers["webhook-signature"]
        return await self.post(body, headers)


class SplunkHec(HttpPost):
    def __init__(self, config: dict[str, Any], timeout: float, allow_private: bool) -> None:
        url = config["url"].rstrip("/")
        if not url.endswith("/services/collector/event"):
            url += "/services/collector/event"
        super().__init__(url, timeout, allow_private)
        self.token = config["token"]
        self.index = config.get("index")
        self.sourcetype = config.get("sourcetype")

    def event(self, record: Record) -> bytes:
        fields: dict[str, Any] = {
            "time": round(record.created_at.timestamp(), 6),
            "host": HOSTNAME,
            "source": "actionlog",
            "sourcetype": self.sourcetype or f"actionlog:{record.kind}",
        }
        if self.index:
            fields["index"] = self.index
        head = orjson.dumps(fields)[:-1]
        return head + b',"event":' + record.json().encode() + b"}"

    async def send(self, records: Sequence[Record]) -> Outcome:
        body = b"\n".join(self.event(record) for record in records)
        headers = {"authorization": f"Splunk {self.token}", "content-type": "application/json"}
        return await self.post(body, headers)


class Datadog(HttpPost):
    def __init__(self, config: dict[str, Any], timeout: float, allow_private: bool) -> None:
        base = config.get("url") or f"https://http-intake.logs.{config['site']}"
        super().__init__(base.rstrip("/") + "/api/v2/logs", timeout, allow_private)
        self.api_key = config["api_key"]
        self.service = config.get("service") or "actionlog"
        self.tags = list(config.get("tags") or [])

    async def send(self, records: Sequence[Record]) -> Outcome:
        entries = [
            {
                "ddsource": "actionlog",
                "ddtags": ",".join([f"kind:{record.kind}", *self.tags]),
                "hostname": HOSTNAME,
                "service": self.service,
                "message": record.json(),
            }
            for record in records
        ]
        headers = {"dd-api-key": self.api_key, "content-type": "application/json"}
        return await self.post(orjson.dumps(entries), headers)
