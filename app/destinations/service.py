"""Rules of the destinations API: configs checked per type, secrets sealed, reads with lag.

Every change is written to the tenant's audit trail in the same transaction (`destination`
resource; create, update, delete), with the actor of the request, as alert rules are; the
config in the trail is the masked one, so no secret reaches it. Targets obey the same
private-address policy as alert webhooks, when saved and before every send.
"""

from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import signing
from app.alerts.targets import UnsafeTarget, check_target
from app.audits.service import AuditService
from app.core.auth import Actor
from app.core.db import new_id, utcnow
from app.core.errors import NotFound, Unprocessable
from app.core.redact import PayloadRules
from app.destinations.models import Destination
from app.destinations.repository import DestinationRepository
from app.destinations.schemas import (
    CONFIGS,
    MASK,
    SECRET_FIELDS,
    DestinationCreate,
    DestinationCreated,
    DestinationRead,
    DestinationUpdate,
    Filters,
    TestResult,
)
from app.destinations.secrets import KeyRing, full_config
from app.destinations.transports import Record
from app.destinations.types import build_transport

FILTER_NAMES = tuple(Filters.model_fields)


def _masked(destination: Destination) -> dict[str, Any]:
    config = dict(destination.config or {})
    for name in SECRET_FIELDS[destination.type]:
        config[name] = MASK
    return config


def _audit_data(destination: Destination) -> dict[str, Any]:
    return {
        "name": destination.name,
        "type": destination.type,
        "config": _masked(destination),
        "kinds": list(destination.kinds),
        "filters": dict(destination.filters),
        "state": destination.state,
    }


class DestinationService:
    """One tenant's destinations, acting for `actor`."""

    def __init__(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        actor: Actor,
        rules: PayloadRules,
        ring: KeyRing,
        allow_private: bool,
        timeout: float,
    ) -> None:
        self.tenant_id = tenant_id
        self.actor = actor
        self.ring = ring
        self.allow_private = allow_private
        self.timeout = timeout
        self.repository = DestinationRepository(session, tenant_id)
        self.audits = AuditService(session, rules)

    async def _checked_config(self, kind: str, config: dict[str, Any]) -> dict[str, Any]:
        """The config validated for its type (422 naming the field), targets checked."""
        try:
            parsed = CONFIGS[kind].model_validate(config)
        except ValidationError as exc:
            raise Unprocessable(
                [
                    {"loc": ["body", "config", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors(include_url=False, include_context=False)
                ]
            ) from None
        values = parsed.model_dump(mode="json", exclude_none=True)
        target, field = _target(kind, values)
        if target is not None:
            try:
                await check_target(target, self.allow_private)
            except UnsafeTarget as exc:
                message = str(exc) if field != "host" else str(exc).replace("url host", "host")
                raise Unprocessable(
                    [{"loc": ["body", "config", field], "msg": message, "type": "target"}]
                ) from None
        return values

    def _store_config(self, destination: Destination, values: dict[str, Any]) -> None:
        secret_names = SECRET_FIELDS[destination.type]
        destination.config = {k: v for k, v in values.items() if k not in secret_names}
        hidden = {k: v for k, v in values.items() if k in secret_names}
        destination.secrets = (
            self.ring.seal(hidden, self.tenant_id, destination.id) if hidden else None
        )

    async def create(self, data: DestinationCreate) -> DestinationCreated:
        config = dict(data.config)
        generated = None
        if data.type == "http" and not config.get("secret"):
            config["secret"] = generated = signing.new_secret()
        values = await self._checked_config(data.type, config)
        now = utcnow()
        destination = Destination(
            id=new_id(),
            tenant_id=self.tenant_id,
            name=data.name,
            type=data.type,
            kinds=list(dict.fromkeys(data.kinds)),
            filters=data.model_dump(mode="json", include=set(FILTER_NAMES), exclude_defaults=True),
            state=data.state,
            delivered_through=await self.repository.head(),
            created_at=now,
            updated_at=now,
        )
        self._store_config(destination, values)
        await self.repository.add(destination)
        await self.audits.log_create(
            self.tenant_id,
            "destination",
            str(destination.id),
            _audit_data(destination),
            actor=self.actor.recorded(),
        )
        read = (await self.reads([destination]))[0]
        return DestinationCreated(**read.model_dump(), secret=generated)

    async def get(self, destination_id: UUID, *, for_update: bool = False) -> Destination:
        destination = await self.repository.get(destination_id, for_update=for_update)
        if destination is None:
            raise NotFound(f"destination {destination_id} not found")
        return destination

    async def read(self, destination_id: UUID) -> DestinationRead:
        return (await self.reads([await self.get(destination_id)]))[0]

    async def all(self) -> list[DestinationRead]:
        return await self.reads(await self.repository.all())

    async def reads(self, destinations: Any) -> list[DestinationRead]:
        """The destinations as read, with their lag (events and age) from the stream."""
        head = await self.repository.head()
        firsts = await self.repository.first_after(
            {d.delivered_through for d in destinations if d.delivered_through < head}
        )
        now = utcnow()
        out = []
        for d in destinations:
            first = firsts.get(d.delivered_through)
            out.append(
                DestinationRead(
                    id=d.id,
                    name=d.name,
                    type=d.type,
                    config=_masked(d),
                    kinds=d.kinds,
                    filters=d.filters or {},
                    state=d.state,
                    delivered_through=d.delivered_through,
                    lag_events=max(0, head - d.delivered_through),
                    lag_seconds=round(max(0.0, (now - first).total_seconds()), 3) if first else 0,
                    last_error=d.last_error,
                    last_error_at=d.last_error_at,
                    last_success_at=d.last_success_at,
                    created_at=d.created_at,
                    updated_at=d.updated_at,
                )
            )
        return out

    async def update(self, destination_id: UUID, data: DestinationUpdate) -> DestinationRead:
        destination = await self.get(destination_id, for_update=True)
        before = _audit_data(destination)
        if data.config is not None:
            current = full_config(self.ring, destination)
            merged = {**current, **data.config}
            for name in SECRET_FIELDS[destination.type]:
                if merged.get(name) in (MASK, None):
                    merged[name] = current.get(name)
            self._store_config(destination, await self._checked_config(destination.type, merged))
        if data.name is not None:
            destination.name = data.name
        if data.kinds is not None:
            destination.kinds = list(dict.fromkeys(data.kinds))
        if data.filters is not None:
            destination.filters = data.filters.model_dump(mode="json", exclude_defaults=True)
        if data.state is not None and (data.state == "paused" or destination.state == "paused"):
            destination.state = data.state
        destination.updated_at = utcnow()
        await self.repository.flush()
        await self.audits.log_update(
            self.tenant_id,
            "destination",
            str(destination.id),
            before,
            _audit_data(destination),
            actor=self.actor.recorded(),
        )
        return (await self.reads([destination]))[0]

    async def delete(self, destination_id: UUID) -> None:
        destination = await self.get(destination_id, for_update=True)
        data = _audit_data(destination)
        await self.repository.delete(destination)
        await self.audits.log_delete(
            self.tenant_id, "destination", str(destination_id), data, actor=self.actor.recorded()
        )

    async def test(self, destination_id: UUID) -> TestResult:
        """Send one test record now; the receiver's answer."""
        destination = await self.get(destination_id)
        transport = build_transport(
            destination.type, full_config(self.ring, destination), self.timeout, self.allow_private
        )
        now = utcnow()
        payload = (
            f'{{"id":"{new_id()}","test":true,"destination_id":"{destination.id}",'
            f'"message":"test record","created_at":"{now.isoformat().replace("+00:00", "Z")}"}}'
        )
        try:
            outcome = await transport.send([Record(0, "test", payload, now)])
        finally:
            await transport.close()
        return TestResult(
            ok=outcome.ok,
            status_code=outcome.status_code,
            response=outcome.response,
            error=outcome.error,
        )


def _target(kind: str, values: dict[str, Any]) -> tuple[str | None, str]:
    """The address a destination sends to, as a URL for the private-address check."""
    if kind in ("http", "splunk_hec"):
        return values["url"], "url"
    if kind == "datadog":
        if values.get("url"):
            return values["url"], "url"
        return f"https://http-intake.logs.{values['site']}/", "site"
    if kind == "syslog":
        return f"http://{values['host']}:{values['port']}/", "host"
    return values.get("endpoint_url"), "endpoint_url"
