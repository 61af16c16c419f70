"""Rules of a stream: where it starts, which events it shows, limits, and gap-free delivery.

A stream starts after `Last-Event-ID` (or the `last_event_id` query parameter; the header
wins, since browsers send it when they reconnect), else at the newest event. It first reads
what it missed from the database, in order, then takes live events from the worker's hub.
Numbers follow each other without holes (app/streamlog/record.py), so a stream checks that
each live event is the next one and reads any hole from the database first: every event is
sent exactly once, in commit order, whichever worker the client reconnects to.
"""

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Protocol
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from app.actions.schemas import Text, fits
from app.actions.statuses import StatusIn
from app.core.auth import TenantContext
from app.core.db import new_id
from app.core.errors import ServiceError, Unprocessable
from app.streamlog.record import KINDS
from app.streams.hub import READ_CHUNK, Event, StreamHub, Subscription

DEFAULT_KINDS = "action,audit"  # tree heads only when asked for


class TooManyStreams(ServiceError):
    status_code = 429
    default_detail = "Too many concurrent streams for this API key"
    headers = {"Retry-After": "5"}  # noqa: RUF012


class EventsGone(ServiceError):
    status_code = 410
    default_detail = "The events after this id are no longer kept"


class SlowConsumer(Exception):
    """The client did not keep up with the live events; it resumes with its last event id."""


class StreamQuery(BaseModel):
    """The list routes' filters, for the events of a stream, and where it resumes."""

    action_type: list[Annotated[Text, fits("action_type")]] = Field(
        default_factory=list, max_length=100, description="Repeatable: any of these types"
    )
    status: list[StatusIn] = Field(
        default_factory=list, max_length=20, description="Repeatable: any of these statuses"
    )
    provider_name: list[Annotated[Text, fits("provider_name")]] = Field(
        default_factory=list, max_length=100, description="Repeatable: any of these providers"
    )
    service: Annotated[Text, fits("service")] | None = Field(
        default=None, description="Service, exact"
    )
    user_id: Annotated[Text, fits("user_id")] | None = Field(
        default=None,
        description="Actor, exact (actions and audit events; also where the field is sealed)",
    )
    session_id: Annotated[Text, fits("session_id")] | None = Field(
        default=None, description="Session, exact"
    )
    correlation_id: Annotated[Text, fits("correlation_id")] | None = Field(
        default=None, description="Correlation id, exact"
    )
    kinds: str = Field(
        default=DEFAULT_KINDS,
        max_length=32,
        description="Comma-separated: action, audit, tree_head (default action,audit)",
    )
    last_event_id: str | None = Field(
        default=None, max_length=20, description="Resume after this event (the header wins)"
    )

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: str) -> str:
        kinds = [kind.strip() for kind in value.split(",") if kind.strip()]
        unknown = [kind for kind in kinds if kind not in KINDS]
        if unknown or not kinds:
            raise ValueError(f"kinds must list action, audit and/or tree_head, got {value!r}")
        return ",".join(kinds)


class Filterable(Protocol):
    """What a filter reads of an event (a live event here; a destination's record too)."""

    @property
    def kind(self) -> str: ...
    @property
    def action_type(self) -> str | None: ...
    @property
    def status(self) -> str | None: ...
    @property
    def provider_name(self) -> str | None: ...
    @property
    def service(self) -> str | None: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def correlation_id(self) -> str | None: ...


@dataclass(frozen=True)
class StreamFilter:
    """An event matches when every given filter matches a field of its record.

    Audit rows have only `user_id` and `correlation_id` among these fields, so any other filter
    selects actions. `user_ids` holds every stored spelling of the `user_id` asked for: the
    value, and its keyed digest where the tenant seals that field (app/subjects/sealing.py
    `filter_values`). A tree head is a signed statement about the whole log, not a record of
    anyone's: field filters do not narrow it, only `kinds` does.
    """

    kinds: frozenset[str]
    action_types: frozenset[str]
    statuses: frozenset[str]
    providers: frozenset[str]
    service: str | None
    user_ids: frozenset[str]
    session_id: str | None
    correlation_id: str | None

    @classmethod
    def of(cls, query: StreamQuery, user_ids: Collection[str]) -> "StreamFilter":
        return cls(
            kinds=frozenset(query.kinds.split(",")),
            action_types=frozenset(query.action_type),
            statuses=frozenset(query.status),
            providers=frozenset(query.provider_name),
            service=query.service,
            user_ids=frozenset(user_ids),
            session_id=query.session_id,
            correlation_id=query.correlation_id,
        )

    def matches(self, event: Filterable) -> bool:
        if event.kind not in self.kinds:
            return False
        if event.kind == "tree_head":
            return True
        for values, value in (
            (self.action_types, event.action_type),
            (self.statuses, event.status),
            (self.providers, event.provider_name),
            (self.user_ids, event.user_id),
        ):
            if values and value not in values:
                return False
        return all(
            wanted is None or wanted == value
            for wanted, value in (
                (self.service, event.service),
                (self.session_id, event.session_id),
                (self.correlation_id, event.correlation_id),
            )
        )


def parse_event_id(value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 18:
        raise Unprocessable(
            f"last_event_id must be the id of an event of this stream (an integer), got {value!r}"
        )
    return int(text)


class StreamCursor:
    """One open stream: its position, its subscription, and the events it has yet to send."""

    def __init__(
        self,
        hub: StreamHub,
        subscription: Subscription,
        position: int,
        event_filter: StreamFilter,
        lease_id: UUID,
    ) -> None:
        self.hub = hub
        self.subscription = subscription
        self.tenant_id = subscription.tenant_id
        self.position = position
        self.filter = event_filter
        self.lease_id = lease_id
        self._catching_up = True

    async def next(self, wait: float | None = None) -> list[Event]:
        """The next matching events in order; [] when `wait` seconds passed without any."""
        while self._catching_up:
            batch = await self.hub.read(self.tenant_id, self.position, READ_CHUNK)
            if self.subscription.overflowed:
                # the database holds everything the queue dropped: read on from there
                self.subscription.discard()
                self.hub.rejoin(self.subscription)
            if not batch:
                self._catching_up = False
                break
            self.position = batch[-1].seq
            if matching := [event for event in batch if self.filter.matches(event)]:
                return matching
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                first = await asyncio.wait_for(self.subscription.queue.get(), remaining)
            except TimeoutError:
                return []
            if self.subscription.overflowed:
                raise SlowConsumer
            events = [first]
            while not self.subscription.queue.empty():
                events.append(self.subscription.queue.get_nowait())
            if matching := await self._in_order(events):
                return matching

    async def _in_order(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            if event.seq <= self.position:
                continue  # already sent (read during the catch-up)
            while event.seq > self.position + 1:  # a hole: read it from the database
                hole = await self.hub.read(
                    self.tenant_id, self.position, READ_CHUNK, upto=event.seq - 1
                )
                if not hole:
                    break
                out.extend(hole)
                self.position = hole[-1].seq
            out.append(event)
            self.position = event.seq
        return [event for event in out if self.filter.matches(event)]

    def close(self) -> None:
        self.hub.unsubscribe(self.subscription)
        self.hub.release(self.tenant_id, self.lease_id)


class StreamService:
    def __init__(self, hub: StreamHub, max_per_key: int) -> None:
        self.hub = hub
        self.max_per_key = max_per_key

    async def open(
        self, tenant: TenantContext, query: StreamQuery, last_event_id: str | None
    ) -> StreamCursor:
        """Check where the stream starts, take a lease of the key, subscribe."""
        after = parse_event_id(last_event_id if last_event_id is not None else query.last_event_id)
        head = await self.hub.head(tenant.tenant_id)
        if after is not None and after > head.seq:
            raise Unprocessable(
                f"last_event_id {after} is beyond the newest event ({head.seq}) of this stream"
            )
        if after is not None and after < head.pruned_through:
            raise EventsGone(
                f"events up to {head.pruned_through} are no longer kept "
                "(STREAM_RETENTION_HOURS); read older records with the list routes"
            )
        user_ids = await self.hub.user_id_values(tenant.tenant_id, query.user_id)
        event_filter = StreamFilter.of(query, user_ids)
        lease_id = new_id()
        live = await self.hub.lease(tenant.tenant_id, tenant.key_id, lease_id)
        if live is not None:
            raise TooManyStreams(
                f"this API key already has {live} open streams, the most allowed "
                f"(STREAM_MAX_PER_KEY={self.max_per_key}); close one or use another key"
            )
        try:
            subscription = await self.hub.subscribe(tenant.tenant_id)
        except BaseException:
            self.hub.release(tenant.tenant_id, lease_id)
            raise
        position = head.seq if after is None else after
        return StreamCursor(self.hub, subscription, position, event_filter, lease_id)
