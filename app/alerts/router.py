"""HTTP routes of alerting: webhook endpoints and rules (`admin`), events (`read`), deliveries
(`admin`). Another tenant's endpoint, rule or delivery answers 404."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from app.alerts.presets import PRESETS
from app.alerts.schemas import (
    AlertEventRead,
    DeliveryRead,
    DeliveryStatus,
    PresetRead,
    RuleCreate,
    RuleRead,
    RuleUpdate,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)
from app.alerts.service import AlertService
from app.core.auth import AdminTenant, ReadTenant, SessionDep, TenantContext
from app.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unprocessable,
    error_responses,
)
from app.core.pagination import PAGED, set_next_page
from app.core.state import core_state

EndpointId = Annotated[UUID, Path(description="The webhook endpoint's id")]
RuleId = Annotated[UUID, Path(description="The alert rule's id")]
DeliveryId = Annotated[UUID, Path(description="The delivery's id")]

router = APIRouter(
    prefix="/api/v1/alerts",
    tags=["alerts"],
    responses=error_responses(Unauthorized, Forbidden),
)
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (max 1000)")]
CursorParam = Annotated[
    str | None, Query(max_length=512, description="X-Next-Cursor of the previous page")
]
ONE = error_responses(NotFound)
WRITE = error_responses(NotFound, Conflict, Unprocessable)


def _service(request: Request, tenant: TenantContext, session: SessionDep) -> AlertService:
    state = core_state(request.app)
    return AlertService(
        session,
        tenant.tenant_id,
        tenant.actor,
        state.payload_rules,
        state.settings.webhook_allow_private,
    )


async def admin_service(request: Request, tenant: AdminTenant, session: SessionDep) -> AlertService:
    return _service(request, tenant, session)


async def read_service(request: Request, tenant: ReadTenant, session: SessionDep) -> AlertService:
    return _service(request, tenant, session)


Admin = Annotated[AlertService, Depends(admin_service)]
Reader = Annotated[AlertService, Depends(read_service)]


# Webhook endpoints


@router.post(
    "/webhooks",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookWithSecret,
    responses=WRITE,
)
async def create_webhook(body: WebhookCreate, service: Admin) -> WebhookWithSecret:
    """Register an endpoint; the answer holds its signing secret, shown only this once."""
    return await service.create_webhook(body)


@router.get("/webhooks", response_model=list[WebhookRead])
async def list_webhooks(service: Admin) -> list[WebhookRead]:
    """The tenant's webhook endpoints (without secrets)."""
    return [WebhookRead.model_validate(e) for e in await service.webhooks()]


@router.get("/webhooks/{endpoint_id}", response_model=WebhookRead, responses=ONE)
async def get_webhook(endpoint_id: EndpointId, service: Admin) -> WebhookRead:
    """One endpoint (without its secret)."""
    return WebhookRead.model_validate(await service.webhook(endpoint_id))


@router.patch("/webhooks/{endpoint_id}", response_model=WebhookRead, responses=WRITE)
async def update_webhook(
    endpoint_id: EndpointId, body: WebhookUpdate, service: Admin
) -> WebhookRead:
    """Change an endpoint's URL or description, or enable / disable it."""
    return WebhookRead.model_validate(await service.update_webhook(endpoint_id, body))


@router.delete("/webhooks/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ONE)
async def delete_webhook(endpoint_id: EndpointId, service: Admin) -> Response:
    """Delete an endpoint; its pending deliveries fail."""
    await service.delete_webhook(endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/webhooks/{endpoint_id}/rotate-secret", response_model=WebhookWithSecret, responses=ONE
)
async def rotate_secret(endpoint_id: EndpointId, service: Admin) -> WebhookWithSecret:
    """A new signing secret (shown once); the old one also signs for 24 hours."""
    return await service.rotate_secret(endpoint_id)


@router.post(
    "/webhooks/{endpoint_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryRead,
    responses=WRITE,
)
async def test_webhook(endpoint_id: EndpointId, service: Admin) -> DeliveryRead:
    """Queue a signed `webhook.test` notification to the endpoint."""
    delivery = await service.test_webhook(endpoint_id)
    return await service.delivery_read(delivery.id)


# Rules


@router.get("/presets", response_model=list[PresetRead])
async def list_presets(_: Admin) -> list[PresetRead]:
    """The preset thresholds, ready to create with `{"preset": name, "webhook_ids": [...]}`."""
    return list(PRESETS.values())


@router.post(
    "/rules", status_code=status.HTTP_201_CREATED, response_model=RuleRead, responses=WRITE
)
async def create_rule(body: RuleCreate, service: Admin) -> RuleRead:
    """Create an alert rule (or start from a preset)."""
    return await service.create_rule(body)


@router.get("/rules", response_model=list[RuleRead])
async def list_rules(service: Admin) -> list[RuleRead]:
    """The tenant's rules, each with the state of its groups."""
    return await service.rules()


@router.get("/rules/{rule_id}", response_model=RuleRead, responses=ONE)
async def get_rule(rule_id: RuleId, service: Admin) -> RuleRead:
    """One rule with the state of its groups."""
    return await service.rule_with_states(rule_id)


@router.patch("/rules/{rule_id}", response_model=RuleRead, responses=WRITE)
async def update_rule(rule_id: RuleId, body: RuleUpdate, service: Admin) -> RuleRead:
    """Change a rule's fields."""
    return await service.update_rule(rule_id, body)


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ONE)
async def delete_rule(rule_id: RuleId, service: Admin) -> Response:
    """Delete a rule (its events stay in the history)."""
    await service.delete_rule(rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# History


@router.get(
    "/events",
    response_model=list[AlertEventRead],
    responses={**PAGED, **error_responses(BadRequest)},
)
async def list_events(
    request: Request,
    response: Response,
    service: Reader,
    rule_id: Annotated[UUID | None, Query(description="Events of this rule")] = None,
    state: Annotated[
        str | None,
        Query(pattern="^(firing|resolved)$", max_length=8, description="firing or resolved"),
    ] = None,
    limit: Limit = 100,
    cursor: CursorParam = None,
) -> list[AlertEventRead]:
    """What fired and resolved, newest first, with the value measured."""
    events, next_cursor = await service.events(cursor, limit, rule_id, state)
    set_next_page(request, response, next_cursor)
    return events


@router.get(
    "/deliveries",
    response_model=list[DeliveryRead],
    responses={**PAGED, **error_responses(BadRequest)},
)
async def list_deliveries(
    request: Request,
    response: Response,
    service: Admin,
    status_: Annotated[
        DeliveryStatus | None, Query(alias="status", description="Deliveries in this status")
    ] = None,
    endpoint_id: Annotated[UUID | None, Query(description="Deliveries to this webhook")] = None,
    event_id: Annotated[UUID | None, Query(description="Deliveries of this event")] = None,
    limit: Limit = 100,
    cursor: CursorParam = None,
) -> list[DeliveryRead]:
    """Notifications and each attempt's status code and duration, newest first."""
    rows, next_cursor = await service.deliveries(cursor, limit, status_, endpoint_id, event_id)
    set_next_page(request, response, next_cursor)
    return rows


@router.get("/deliveries/{delivery_id}", response_model=DeliveryRead, responses=ONE)
async def get_delivery(delivery_id: DeliveryId, service: Admin) -> DeliveryRead:
    """One delivery with its attempts."""
    return await service.delivery_read(delivery_id)


@router.post(
    "/deliveries/{delivery_id}/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryRead,
    responses=WRITE,
)
async def resend_delivery(
    delivery_id: DeliveryId, service: Admin, request: Request
) -> DeliveryRead:
    """Send a failed (or delivered) notification again, from the start of the schedule."""
    return await service.resend(delivery_id)
