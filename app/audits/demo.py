"""Demo audit trail: contacts, tickets and settings being created, edited and deleted.

Written through AuditService, so the demo tenant's chain verifies like any other. The events
are back-dated over the same seven days as the demo actions, in chain order, so that the
console's audit list and a resource's state at a past time read like a real week.
"""

import random
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.audits.service import AuditService
from app.core.auth import Actor
from app.core.db import utcnow
from app.core.redact import PayloadRules

PEOPLE = [
    ("alice@example.com", "203.0.113.10", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) Safari"),
    ("bob@example.com", "198.51.100.23", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome"),
    ("carol@example.com", "2001:db8::7", "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0"),
    ("sync-bot", "10.0.4.12", "crm-sync/2.3 python-httpx/0.27"),
]
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Linus", "Frances", "Tim"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Perlman", "Allen"]
CITIES = ["Paris", "Lyon", "Berlin", "Madrid", "Lisbon", "Dublin"]
STAGES = ["subscriber", "lead", "marketingqualifiedlead", "opportunity", "customer"]
SUBJECTS = [
    "Cannot export report to S3",
    "Invoice shows the wrong VAT rate",
    "SSO login loops back to the sign-in page",
    "Webhook deliveries are delayed",
    "Request: bulk edit of contact owners",
]


class _Trail:
    def __init__(
        self, session: AsyncSession, rules: PayloadRules, tenant_id: UUID, rng: random.Random
    ) -> None:
        self.audits = AuditService(session, rules)
        self.tenant_id = tenant_id
        self.rng = rng
        self.written = 0
        self.now = utcnow()
        self.moment = self.now - timedelta(days=7)

    async def _write(
        self,
        action: str,
        kind: str,
        rid: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        metadata: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Build the event as the service does and append it at the trail's next moment."""
        event = self.audits.events.build(
            action, kind, rid, before, after, self._who(), metadata,
            correlation_id=correlation_id,
        )  # fmt: skip
        if event is None:
            return
        # ~50 events, 1 to 5 hours apart: the week of the demo actions
        self.moment = min(self.moment + timedelta(hours=self.rng.uniform(1, 5)), self.now)
        await self.audits.append(self.tenant_id, [{**event, "created_at": self.moment}])
        self.written += 1

    def _who(self) -> Actor:
        user, ip, agent = self.rng.choice(PEOPLE)
        return Actor(user, ip, agent)

    async def create(self, kind: str, rid: str, data: dict[str, Any]) -> None:
        await self._write("create", kind, rid, None, data)

    async def update(
        self, kind: str, rid: str, before: dict[str, Any], after: dict[str, Any]
    ) -> None:
        meta = {"source": self.rng.choice(["ui", "api", "crm_sync"])}
        # Changes made by the CRM sync belong to an incident of the demo's AI agent (inc_001 …
        # inc_040), so the console's timeline shows both kinds together.
        correlation = (
            f"inc_{sum(map(ord, rid)) % 40 + 1:03d}" if meta["source"] == "crm_sync" else None
        )
        await self._write("update", kind, rid, before, after, meta, correlation)

    async def delete(self, kind: str, rid: str, data: dict[str, Any]) -> None:
        await self._write("delete", kind, rid, data, None)


def _contact(rng: random.Random, n: int) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return {
        "email": f"{first.lower()}.{last.lower()}{n}@example.org",
        "firstname": first,
        "lastname": last,
        "lifecyclestage": STAGES[0],
        "address": {"city": rng.choice(CITIES), "country": "EU"},
        "tags": ["newsletter"],
    }


async def _contacts(trail: _Trail) -> None:
    contacts = {f"contact-{4800 + n}": _contact(trail.rng, n) for n in range(10)}
    for rid, data in contacts.items():
        await trail.create("contact", rid, data)
    for _ in range(15):
        rid = trail.rng.choice(list(contacts))
        before = contacts[rid]
        after = {**before, "address": dict(before["address"]), "tags": list(before["tags"])}
        change = trail.rng.choice(["stage", "city", "tag"])
        if change == "stage":
            after["lifecyclestage"] = STAGES[min(STAGES.index(before["lifecyclestage"]) + 1, 4)]
        elif change == "city":
            after["address"]["city"] = trail.rng.choice(CITIES)
        elif "vip" not in after["tags"]:
            after["tags"].append("vip")
        await trail.update("contact", rid, before, after)
        contacts[rid] = after
    for rid in list(contacts)[-3:]:
        await trail.delete("contact", rid, contacts.pop(rid))


async def _tickets(trail: _Trail) -> None:
    tickets: dict[str, dict[str, Any]] = {}
    for n, subject in enumerate(SUBJECTS * 2):
        rid = f"ticket-{1200 + n}"
        tickets[rid] = {"subject": subject, "status": "open", "priority": "normal"}
        await trail.create("ticket", rid, tickets[rid])
    for rid in list(tickets)[:6]:
        before = tickets[rid]
        after = {**before, "status": "pending", "assignee": trail.rng.choice(PEOPLE[:3])[0]}
        await trail.update("ticket", rid, before, after)
        tickets[rid] = after
    for rid in list(tickets)[:4]:
        before = tickets[rid]
        tickets[rid] = {**before, "status": "solved"}
        await trail.update("ticket", rid, before, tickets[rid])
    await trail.delete("ticket", "ticket-1209", tickets["ticket-1209"])


async def _settings(trail: _Trail) -> None:
    before = {
        "notifications": {"email": True, "slack": False},
        "webhook_url": "https://hooks.example.com/actionlog",
        "api_token": "whk_live_51Hx9",
        "retention_days": 90,
    }
    after = {**before, "notifications": {"email": True, "slack": True}}
    await trail.update("settings", "workspace", before, after)
    rotated = {**after, "api_token": "whk_live_8Kq2P"}
    await trail.update("settings", "workspace", after, rotated)
    await trail.update("settings", "workspace", rotated, {**rotated, "retention_days": 180})


async def load_demo_audits(session: AsyncSession, rules: PayloadRules, tenant_id: UUID) -> int:
    """Write the demo trail for `tenant_id`; the number of audit rows written."""
    trail = _Trail(session, rules, tenant_id, random.Random(11))
    await _contacts(trail)
    await _tickets(trail)
    await _settings(trail)
    return trail.written
