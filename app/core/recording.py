"""Recording a request's items: one path, whichever door the request came in by.

A write arrives by the ingest lane (app/core/lane.py), by its FastAPI route, or by that route
with an `Idempotency-Key`. All three take the same two steps through the domain's recorder:
`prepare` (validate, redact and build every item of the body before anything is stored, so a
bad item refuses its whole request with a 422 naming it) and `write` (store the items through
a writer of app/core/writer.py and answer from what was stored). Without a key the recorder's
writer is the worker's (group commit on PostgreSQL); with one, `record_once` writes in the
request's session, in the transaction that also holds the key, through the same `write`.

What differs between actions and audit events (their bodies, rows and answers) is the
domain's (app/actions/recorder.py, app/audits/recorder.py); the steps are stated here once.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from app.core.idempotency import IdempotencyGuard, IdempotencyRepository, Written

Item = TypeVar("Item")
Stored = TypeVar("Stored")


@dataclass(frozen=True)
class Prepared(Generic[Item, Stored]):
    """The items of one request, ready to be stored, and how to answer once they are."""

    items: list[Item]
    answer: Callable[[Stored], Written]
    # The fingerprint of the validated request, for an Idempotency-Key: computed only for a
    # keyed write (nearly every request has none, and hashing the body costs).
    fingerprint: Callable[[], str]
    batch: bool = False


class Recorder(Protocol[Item, Stored]):
    """One tenant's recorder: what the lane and the routes call to record a request."""

    def prepare(self, body: Any) -> Prepared[Item, Stored]:
        """The items of one body and its answer, or a 422 naming the fields."""
        ...

    def prepare_batch(self, body: Any) -> Prepared[Item, Stored]:
        """The items of a batch and its answer; one invalid item is a 422 naming its index."""
        ...

    async def write(self, prepared: Prepared[Item, Stored]) -> Written:
        """Store the prepared items and answer; committed on return unless stated."""
        ...


async def record_once(
    keys: IdempotencyRepository,
    key: str,
    prepared: Prepared[Item, Stored],
    write: Callable[[Prepared[Item, Stored]], Awaitable[Written]],
    now: datetime,
    ttl_hours: int,
) -> Written:
    """Record prepared items once per idempotency key; a retry replays the first answer.

    The answer may be known only once the items are stored (an audit row's place in its
    chain): the key is claimed first with a placeholder (a concurrent duplicate waits on it
    until this transaction ends, then replays), and settled with the answer in the same
    transaction, so no other request ever sees the placeholder.
    """
    guard = IdempotencyGuard(keys, key, prepared.fingerprint(), now, ttl_hours)
    if (previous := await guard.previous()) is not None:
        return previous
    if (winner := await guard.claim(Written(201, {}))) is not None:  # settled below
        return winner
    written = await write(prepared)
    await guard.settle(written)
    return written
