"""What every destination type shares: the records of a batch, the outcome of a send, retries.

A record goes out as the list routes show it (a `tree_head` as GET /audits/tree-head answers
it), plus `kind` (`action`, `audit` or `tree_head`) and `stream_id`, its number in the
tenant's stream: a receiver that sees a number twice (delivery is at least once) can drop the
repeat, and numbers give the tenant's order.

An outcome is delivered, or failed: transient (no answer, 408, 429, 5xx) or permanent (another
4xx). Both are retried with backoff and jitter, honouring a `Retry-After`; a permanent one
that lasts DESTINATION_FAILING_AFTER_SECONDS turns the destination `failing`.
"""

import email.utils
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

HOSTNAME = socket.gethostname()[:255] or "actionlog"


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    kind: str
    payload: str  # the record's JSON object, as the list routes write it (no outer spaces)
    created_at: datetime

    def json(self) -> str:
        """The record with `stream_id` and `kind` added (JSON text, built without parsing)."""
        head = f'{{"stream_id":{self.seq},"kind":"{self.kind}"'
        if self.payload[1:2] == "}":  # an empty object
            return head + "}"
        return head + "," + self.payload[1:]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    permanent: bool = False
    response: str | None = None


def http_outcome(status: int, text: str, retry_after: str | None) -> Outcome:
    if 200 <= status < 300:
        return Outcome(True, status, response=text[:1000])
    permanent = 400 <= status < 500 and status not in (408, 429)
    return Outcome(
        False,
        status,
        f"HTTP {status}: {text[:200]}".strip(),
        parse_retry_after(retry_after),
        permanent,
        text[:1000],
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - datetime.now(when.tzinfo).timestamp())


def backoff(attempt: int, cap: float, retry_after: float | None = None) -> float:
    """Seconds before retry `attempt` (1, 2, …): exponential from 1 s, full jitter, capped;
    never sooner than the receiver's Retry-After (itself capped at an hour)."""
    delay = random.uniform(0.5, 1.0) * min(cap, 2.0 ** (attempt - 1))
    if retry_after is not None:
        delay = max(delay, min(retry_after, 3600.0))
    return delay


class Transport(Protocol):
    async def send(self, records: Sequence[Record]) -> Outcome: ...

    async def close(self) -> None: ...
