"""The console's destinations page: where the tenant's records go, how far behind each is,
its last error, and a button to pause or resume it.

Reading needs a signed-in key, as every page does; pausing and resuming change the
destination, so they need the key's `admin` scope (the API's rule), a same-origin POST and the
session's form token. The change goes through the API's service, audited the same way.
"""

from typing import Annotated
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import RedirectResponse

from app.console.auth import ConsoleTenant, CurrentSession, check_same_origin, signer_of
from app.console.render import render
from app.console.routing import ConsoleRoute
from app.core.auth import SessionDep
from app.core.errors import BadRequest, Forbidden
from app.destinations.schemas import DestinationUpdate
from app.destinations.service import DestinationService

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)


async def _service(
    request: Request, tenant: ConsoleTenant, session: SessionDep
) -> DestinationService:
    state = request.app.state
    return DestinationService(
        session,
        tenant.tenant_id,
        tenant.actor,
        state.payload_rules,
        await state.destination_keys.get(),
        state.settings.webhook_allow_private,
        state.settings.destination_timeout_seconds,
    )


Destinations = Annotated[DestinationService, Depends(_service)]


@router.get("/destinations")
async def destinations_page(
    request: Request, tenant: ConsoleTenant, destinations: Destinations
) -> Response:
    rows = await destinations.all()
    return render(request, "destinations.html", rows=rows, can_change="admin" in tenant.scopes)


@router.post("/destinations/{destination_id}/state")
async def change_state(
    request: Request,
    session: CurrentSession,
    tenant: ConsoleTenant,
    destinations: Destinations,
    destination_id: Annotated[UUID, Path()],
) -> Response:
    check_same_origin(request)
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    form = {name: values[0] for name, values in fields.items()}
    if not signer_of(request).check_form_token(session, form.get("token")):
        raise Forbidden("The form has expired; reload the page and retry.")
    if "admin" not in tenant.scopes:
        raise Forbidden("Pausing or resuming a destination needs a key with the 'admin' scope.")
    state = form.get("state")
    if state == "active":
        await destinations.update(destination_id, DestinationUpdate(state="active"))
    elif state == "paused":
        await destinations.update(destination_id, DestinationUpdate(state="paused"))
    else:
        raise BadRequest("state must be active or paused")
    return RedirectResponse("/ui/destinations", status_code=303)
