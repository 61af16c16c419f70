"""Demo data: a `demo` tenant with a few hundred realistic action and audit records.

Loading is idempotent: when the demo tenant exists, only a fresh key is issued.
"""

import functools
import random
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.recorder import session_recorder
from app.actions.rows import RowBuilder
from app.actions.schemas import ActionCreate, StepCreate
from app.audits.demo import load_demo_audits
from app.core.auth import ALL_SCOPES, Actor
from app.core.config import Settings
from app.core.db import utcnow
from app.core.redact import PayloadRules
from app.tenants.repository import TenantRepository
from app.tenants.schemas import ApiKeyCreate, TenantCreate
from app.tenants.service import TenantService

DEMO_SLUG = "demo"
DEMO_KEY_NAMES = ("default", "demo")  # the tenant's first key, and those of later runs
ACTOR = Actor(id="demo")

# (action_type, provider, service, source, typical ms, failure rate, error_type, error)
KINDS: list[tuple[str, str | None, str, str, int, float, str, str]] = [
    (
        "crm_create",
        "hubspot",
        "CrmAdapter",
        "api",
        240,
        0.04,
        "RateLimitError",
        "HubSpot API rate limit exceeded (429)",
    ),
    (
        "crm_update",
        "hubspot",
        "CrmAdapter",
        "api",
        180,
        0.03,
        "ValidationError",
        "Property 'lifecyclestage' is invalid for contact 4812",
    ),
    (
        "helpdesk_create_ticket",
        "zendesk",
        "HelpdeskAdapter",
        "api",
        320,
        0.05,
        "TimeoutError",
        "Zendesk did not answer within 10000 ms",
    ),
    (
        "calendar_create_event",
        "google",
        "CalendarAdapter",
        "api",
        150,
        0.02,
        "AuthError",
        "OAuth token expired for account 77",
    ),
    (
        "job_execution",
        None,
        "Scheduler",
        "scheduled_job",
        4200,
        0.06,
        "JobError",
        "Job us_congress_collection failed after 3 retries",
    ),
    (
        "s3_export",
        "s3",
        "ExportService",
        "ui_button",
        1800,
        0.05,
        "ClientError",
        "Access Denied for bucket review-exports",
    ),
    (
        "ai_remediation",
        "openai",
        "DecisionEngine",
        "ai_agent",
        2500,
        0.08,
        "RemediationError",
        "Connection refused while restarting database pool",
    ),
    (
        "document_upload",
        None,
        "DocumentService",
        "ui_button",
        600,
        0.03,
        "FileNotFoundError",
        "File not found: review_2024_11.docx",
    ),
]
USERS = ["alice@example.com", "bob@example.com", "carol@example.com", "system"]


def _action(rng: random.Random, minutes_ago: float) -> tuple[ActionCreate, datetime]:
    """One demo action and the time it was recorded (when it completed)."""
    kind = rng.choice(KINDS)
    action_type, provider, service, source, typical_ms, failure_rate, err_type, err = kind
    failed = rng.random() < failure_rate
    duration = max(5, int(rng.gauss(typical_ms, typical_ms / 4)))
    started = utcnow() - timedelta(minutes=minutes_ago)
    completed = started + timedelta(milliseconds=duration)
    status = ("timeout" if err_type == "TimeoutError" else "failure") if failed else "success"
    steps = [
        StepCreate(step=step, status="success", timestamp=started)
        for step in ("validation", "execution")
    ]
    data = ActionCreate(
        action_type=action_type,
        action_name=action_type.replace("_", " ").title(),
        provider_name=provider,
        service=service,
        source=source,
        user_id=rng.choice(USERS),
        correlation_id=f"inc_{rng.randint(1, 40):03d}" if source == "ai_agent" else None,
        status=status,
        request_payload={"email": f"user{rng.randint(1, 999)}@example.com", "attempt": 1},
        response_data=None if failed else {"id": str(rng.randint(10_000, 99_999))},
        metadata={"region": rng.choice(["eu-west-1", "us-east-1"])},
        steps=steps if source == "ai_agent" else [],
        error_message=err if failed else None,
        error_type=err_type if failed else None,
        execution_time_ms=duration,
        started_at=started,
        completed_at=completed,
    )
    # One session per user and day, for the console's session report.
    user = (data.user_id or "system").split("@")[0]
    data = data.model_copy(update={"session_id": f"{user}-{started:%Y%m%d}"})
    return data, completed


def _at(moment: datetime) -> datetime:
    return moment


async def _load_actions(
    session: AsyncSession, rules: PayloadRules, tenant_id: UUID, rows: int
) -> int:
    """Record the demo actions through the same recorder as `POST /api/v1/logs/actions`,
    each at the time it happened, in the session's transaction."""
    rng = random.Random(7)
    for _ in range(rows):
        data, recorded_at = _action(rng, minutes_ago=rng.uniform(0, 7 * 24 * 60))
        builder = RowBuilder(rules, functools.partial(_at, recorded_at))
        await session_recorder(tenant_id, builder, session).record(data)
    return rows


async def load_demo(session: AsyncSession, settings: Settings, rows: int = 300) -> dict[str, Any]:
    rules = PayloadRules.from_settings(settings)
    service = TenantService(session, ACTOR, rules)
    tenant = await TenantRepository(session).get_by_slug(DEMO_SLUG)
    if tenant is not None:
        # A new key each run (a key is shown only once), and the demo's earlier keys revoked:
        # there is never more than one live demo key.
        for key in await service.list_keys(tenant.id):
            if key.name in DEMO_KEY_NAMES and key.revoked_at is None:
                await service.revoke_key(tenant.id, key.id)
        issued = await service.issue_key(
            tenant.id, ApiKeyCreate(name="demo", scopes=list(ALL_SCOPES))
        )
        loaded = {"loaded_actions": 0, "loaded_audits": 0}
        return {"tenant_id": tenant.id, "api_key": issued.plaintext, **loaded}
    tenant, issued = await service.create(TenantCreate(name="Demo", slug=DEMO_SLUG))
    await _load_actions(session, rules, tenant.id, rows)
    audits = await load_demo_audits(session, rules, tenant.id)
    return {
        "tenant_id": tenant.id,
        "api_key": issued.plaintext,
        "loaded_actions": rows,
        "loaded_audits": audits,
    }
