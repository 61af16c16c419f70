"""Sending one group of events and reading the service's answer.

`Sender.send(batch)` makes the request(s) for a group taken from the queue and says what
became of each event: delivered, refused for good, to be sent again as smaller groups, or to
be retried later as a whole. It never sleeps and never raises for what the service does; the
pipeline owns timing, counters and the spool.

Why each answer is read the way it is:

- A batch is all or nothing on the service, so a refused batch stored nothing. A 422 names
  each bad item by index (`loc: ["body", i, …]`): those are refused, the others go again at
  once. A refusal that names no index (400, 413, a 422 about the whole body) is bisected until
  the bad event stands alone. A 409 for a batch names the items whose id was already stored
  with another body: refused, the rest goes again.
- 408, 425, 429 and 5xx, and transport errors, are retried; `Retry-After` is returned for the
  pipeline to honour. A batch that keeps failing with a plain 500 (a bug on the service that
  one event may trigger) is bisected after `POISON_AFTER` tries, so one event cannot stall
  everything behind it.
- A timeout or a broken connection after the request was written may have reached the
  service ("maybe sent"). Creates are safe to send again (same ids: an idempotent replay).
  A retried completion that meets 409 "already final" was delivered by the first attempt. A
  step or an audit record is looked up before it is sent again, since the service would
  store it twice.
- A follow-up (update, step) whose action answers 404 may be waiting for its start in
  another process (started before a fork, say): it is retried `NOT_FOUND_TRIES` times, then
  refused. One whose start was refused here is refused at once.
"""

import email.utils
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from actionlog_client._events import ACTION, AUDIT, STEP, UPDATE, Event, json_fallback
from actionlog_client.errors import EventsRejected, ServiceUnavailable

ACTIONS = "/api/v1/logs/actions"
AUDITS = "/api/v1/logs/audits"
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
POISON_AFTER = 3
NOT_FOUND_TRIES = 5
MAX_RETRY_AFTER = 300.0
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@dataclass
class Result:
    sent: list[Event] = field(default_factory=list)
    rejected: list[tuple[Event, Exception]] = field(default_factory=list)
    again: list[list[Event]] = field(default_factory=list)  # smaller groups, to send next
    retry: Exception | None = None  # the whole group waits and goes again
    retry_after: float | None = None
    maybe_sent: bool = False


def dumps(value: Any) -> bytes:
    """JSON that never fails on a value json cannot encode: such values become text."""
    return json.dumps(value, default=json_fallback, separators=(",", ":")).encode()


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(MAX_RETRY_AFTER, seconds))


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text[:500]


def _indexed(detail: Any, size: int) -> dict[int, list[Any]]:
    """Errors by batch index, from a FastAPI-style `detail` list; empty if none is indexed."""
    by_index: dict[int, list[Any]] = {}
    if not isinstance(detail, list):
        return by_index
    for item in detail:
        loc = item.get("loc") if isinstance(item, dict) else None
        if (
            isinstance(loc, list)
            and len(loc) >= 2
            and loc[0] == "body"
            and isinstance(loc[1], int)
            and not isinstance(loc[1], bool)
            and 0 <= loc[1] < size
        ):
            by_index.setdefault(loc[1], []).append(item)
        else:
            return {}  # an error about the whole body: the indices cannot be trusted
    return by_index


def _same_time(a: Any, b: Any) -> bool:
    try:
        parsed = [datetime.fromisoformat(str(v).replace("Z", "+00:00")) for v in (a, b)]
    except ValueError:
        return bool(a == b)
    return parsed[0] == parsed[1]


def _covers(sent: Any, stored: Any) -> bool:
    """Whether `stored` is what the service made of `sent` (secrets may read "[REDACTED]")."""
    if stored == "[REDACTED]":
        return True
    if isinstance(sent, dict) and isinstance(stored, dict):
        return sent.keys() == stored.keys() and all(_covers(sent[k], stored[k]) for k in sent)
    if isinstance(sent, list) and isinstance(stored, list):
        return len(sent) == len(stored) and all(map(_covers, sent, stored))
    return bool(sent == stored)


class Sender:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.refused_ids: OrderedDict[str, None] = OrderedDict()  # starts refused here
        self.server_errors = 0  # consecutive plain 500s of the current group

    def forget(self, action_id: str) -> None:
        self.refused_ids[action_id] = None
        while len(self.refused_ids) > 10_000:
            self.refused_ids.popitem(last=False)

    def send(self, batch: list[Event]) -> Result:
        kind = batch[0].kind
        try:
            if kind == ACTION:
                return self._actions(batch)
            if kind == UPDATE:
                return self._update(batch[0])
            if kind == STEP:
                return self._step(batch[0])
            if kind == AUDIT:
                return self._audit(batch[0])
        except httpx.TransportError as exc:
            return self._transport_failure(exc)
        except httpx.InvalidURL as exc:
            return Result(rejected=[(e, exc) for e in batch])
        raise ValueError(f"unknown event kind {kind!r}")

    # Outcomes shared by every kind

    @staticmethod
    def _transport_failure(exc: httpx.TransportError) -> Result:
        failure = ServiceUnavailable(f"the service could not be reached: {exc!r}")
        failure.__cause__ = exc
        return Result(retry=failure, maybe_sent=not isinstance(exc, NOT_SENT))

    def _temporary(self, response: httpx.Response, batch: list[Event]) -> Result | None:
        """A retry for 408/425/429/5xx (None for other statuses)."""
        code = response.status_code
        if code not in RETRYABLE and code < 500:
            return None
        failure = ServiceUnavailable(
            f"the service answered {code}: {_detail(response)}", status_code=code
        )
        if code == 500:
            self.server_errors += 1
            if self.server_errors >= POISON_AFTER:
                self.server_errors = 0
                if len(batch) > 1:
                    half = len(batch) // 2
                    return Result(again=[batch[:half], batch[half:]])
                return Result(rejected=[(batch[0], failure)])
        return Result(retry=failure, retry_after=retry_after(response))

    @staticmethod
    def _refused(response: httpx.Response, what: str) -> EventsRejected:
        code = response.status_code
        detail = _detail(response)
        return EventsRejected(
            f"the service refused {what} ({code}): {detail}", status_code=code, detail=detail
        )

    # Creates: POST /actions/batch

    def _actions(self, batch: list[Event]) -> Result:
        response = self.client.post(
            f"{ACTIONS}/batch",
            content=dumps([e.body for e in batch]),
            headers={"Content-Type": "application/json"},
        )
        code = response.status_code
        if code in (200, 201):
            self.server_errors = 0
            return Result(sent=list(batch))
        if (temporary := self._temporary(response, batch)) is not None:
            return temporary
        self.server_errors = 0
        if code in (400, 409, 413, 422):
            detail = _detail(response)
            by_index = _indexed(detail, len(batch)) if code in (409, 422) else {}
            if by_index:
                result = Result()
                for index, errors in by_index.items():
                    event = batch[index]
                    result.rejected.append(
                        (
                            event,
                            EventsRejected(
                                f"the service refused action {event.target} ({code}): {errors}",
                                status_code=code,
                                detail=errors,
                            ),
                        )
                    )
                rest = [e for i, e in enumerate(batch) if i not in by_index]
                if rest:
                    result.again.append(rest)
                self._remember(result)
                return result
            if len(batch) > 1:
                half = len(batch) // 2
                return Result(again=[batch[:half], batch[half:]])
        result = Result(rejected=[(e, self._refused(response, "the batch")) for e in batch])
        self._remember(result)
        return result

    def _remember(self, result: Result) -> None:
        for event, _ in result.rejected:
            if event.kind == ACTION and event.target:
                self.forget(event.target)

    # Follow-ups: PATCH /actions/{id}, POST /actions/{id}/steps

    def _unknown_action(self, event: Event) -> Result | None:
        if event.target in self.refused_ids:
            return Result(
                rejected=[
                    (
                        event,
                        EventsRejected(
                            f"action {event.target} was refused, so its {event.kind} is too",
                            status_code=404,
                        ),
                    )
                ]
            )
        return None

    def _not_found(self, event: Event, response: httpx.Response) -> Result:
        event.not_found += 1
        refused = self._refused(response, f"the {event.kind} of action {event.target}")
        if event.not_found >= NOT_FOUND_TRIES:
            return Result(rejected=[(event, refused)])
        return Result(retry=refused)

    def _update(self, event: Event) -> Result:
        if (unknown := self._unknown_action(event)) is not None:
            return unknown
        response = self.client.patch(
            f"{ACTIONS}/{event.target}",
            content=dumps(event.body),
            headers={"Content-Type": "application/json"},
        )
        code = response.status_code
        if code == 200:
            return Result(sent=[event])
        if code == 404:
            return self._not_found(event, response)
        if code == 409 and event.maybe_sent:
            return Result(sent=[event])  # the first attempt got through and finished it
        if (temporary := self._temporary(response, [event])) is not None:
            return temporary
        return Result(rejected=[(event, self._refused(response, f"the update of {event.target}"))])

    def _step(self, event: Event) -> Result:
        if (unknown := self._unknown_action(event)) is not None:
            return unknown
        if event.maybe_sent:
            found = self.client.get(f"{ACTIONS}/{event.target}")
            if found.status_code == 200 and self._has_step(found.json(), event.body):
                return Result(sent=[event])
            if (temporary := self._temporary(found, [event])) is not None:
                return temporary
        response = self.client.post(
            f"{ACTIONS}/{event.target}/steps",
            content=dumps(event.body),
            headers={"Content-Type": "application/json"},
        )
        code = response.status_code
        if code in (200, 201):
            return Result(sent=[event])
        if code == 404:
            return self._not_found(event, response)
        if (temporary := self._temporary(response, [event])) is not None:
            return temporary
        return Result(rejected=[(event, self._refused(response, f"a step of {event.target}"))])

    @staticmethod
    def _has_step(record: dict[str, Any], step: dict[str, Any]) -> bool:
        return any(
            s.get("step") == step["step"]
            and s.get("status") == step["status"]
            and _same_time(s.get("timestamp"), step["timestamp"])
            for s in record.get("steps") or []
        )

    # Audit records: POST /audits

    def _audit(self, event: Event) -> Result:
        if event.maybe_sent and self._audit_stored(event):
            return Result(sent=[event])
        response = self.client.post(
            AUDITS, content=dumps(event.body), headers={"Content-Type": "application/json"}
        )
        if response.status_code in (200, 201):
            return Result(sent=[event])
        if (temporary := self._temporary(response, [event])) is not None:
            return temporary
        return Result(rejected=[(event, self._refused(response, "the audit record"))])

    def _audit_stored(self, event: Event) -> bool:
        """Whether a first attempt of this audit record was stored (then it is not resent).

        Audit records carry no client id, so the record is recognised by its content among
        the resource's records created since shortly before the first attempt.
        """
        body = event.body
        since = (event.first_sent or time.time()) - 300
        params = {
            "action": body["action"],
            "resource_type": body["resource_type"],
            "resource_id": body["resource_id"],
            "since": datetime.fromtimestamp(since, UTC).isoformat().replace("+00:00", "Z"),
            "limit": "100",
        }
        if body.get("user_id") is not None:
            params["user_id"] = body["user_id"]
        response = self.client.get(AUDITS, params=params)
        if response.status_code in (401, 403):
            return False  # a key without `read` cannot look: send again (at least once)
        if response.status_code != 200:
            raise httpx.TransportError(f"audit lookup answered {response.status_code}")
        sent = json.loads(dumps(body))
        for row in response.json():
            changes = row.get("changes") or {}
            if (
                _covers(sent.get("before"), changes.get("before"))
                and _covers(sent.get("after"), changes.get("after"))
                and _covers(sent.get("metadata") or {}, row.get("metadata") or {})
                and sent.get("ip_address") == row.get("ip_address")
            ):
                return True
        return False
