"""The web console at /ui: server-rendered pages over the same services as the API.

Every page is a GET whose filters are in the query string, so any view can be bookmarked and
shared; the action filters are the API's own (`app/actions/filters.py`). Pages need a console
session (app/console/session.py); only sign-in and sign-out are POSTs.
"""

import re
import secrets
from dataclasses import replace
from pathlib import Path as FilePath
from typing import Annotated
from urllib.parse import parse_qs, quote, urlencode
from uuid import UUID

from fastapi import APIRouter, FastAPI, Header, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from app.actions.filters import ActionFilter, Filters
from app.actions.schemas import ActionRead, Sort
from app.actions.statuses import FAILED
from app.audits.schemas import AuditFilters, AuditRead
from app.console.auth import (
    ConsoleTenant,
    CurrentSession,
    check_same_origin,
    live_key_problem,
    safe_next,
    signer_of,
)
from app.console.dependencies import Actions, Audits, Stats, Timelines
from app.console.destinations import router as destinations_router
from app.console.render import render
from app.console.routing import ConsoleRoute
from app.console.schemas import router as schemas_router
from app.console.session import COOKIE_NAME, COOKIE_PATH, SessionSigner
from app.console.state import console_state
from app.console.views import (
    Range,
    breakdowns,
    chart_data,
    interval_for,
    ranged,
    session_report,
)
from app.console.waterfall import waterfall
from app.core.config import Settings
from app.core.errors import Forbidden, Unauthorized
from app.core.inputs import QueryTime
from app.core.pagination import PageCursor
from app.core.state import core_state
from app.streams.service import StreamQuery
from app.streams.sse import sse_response
from app.streams.state import streams_state

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)
STATIC_DIR = FilePath(__file__).parent / "static"

PAGE = 50
WATERFALL_LIMIT = 5000  # actions drawn under one action (a trace of a few thousand spans)
CursorParam = Annotated[str | None, Query(max_length=512)]
Limit = Annotated[int, Query(ge=1, le=500)]


# Signing in and out


async def _form(request: Request) -> dict[str, str]:
    """The first value of each field of a urlencoded form (the console's only bodies)."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    return {name: values[0] for name, values in fields.items()}


@router.get("")
async def console_home() -> RedirectResponse:
    return RedirectResponse("/ui/actions", status_code=303)


@router.get("/sign-in")
async def sign_in_page(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    return render(request, "sign_in.html", next=safe_next(next), error=None, signed_in=False)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Check the key typed into the form; on success set the session cookie and go on."""
    check_same_origin(request)
    form = await _form(request)
    presented = form.get("api_key", "").strip()
    target = safe_next(form.get("next"))
    try:
        key = await core_state(request.app).keys.resolve(presented)
    except Unauthorized as exc:
        error = "Enter an API key." if not presented else f"Sign-in refused: {exc.detail}."
        return render(request, "sign_in.html", 401, next=target, error=error, signed_in=False)
    if (problem := live_key_problem(key)) is not None:
        return render(request, "sign_in.html", 403, next=target, error=problem, signed_in=False)
    signer = signer_of(request)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        signer.issue(key.id, key.prefix),
        max_age=signer.lifetime_seconds,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: CurrentSession) -> Response:
    check_same_origin(request)
    form = await _form(request)
    if not signer_of(request).check_form_token(session, form.get("token")):
        raise Forbidden("The sign-out form has expired; reload the page and retry.")
    response = RedirectResponse("/ui/sign-in", status_code=303)
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


# Actions


def _next_link(request: Request, path: str, cursor: PageCursor | None) -> str | None:
    """The same view's next page: this query with the next cursor (None on the last page)."""
    if cursor is None:
        return None
    params = [
        (k, v) for k, v in request.query_params.multi_items() if k not in ("cursor", "fragment")
    ]
    params.append(("cursor", cursor.encode()))
    return f"{path}?{urlencode(params)}"


@router.get("/actions")
async def actions_page(
    request: Request,
    tenant: ConsoleTenant,
    actions: Actions,
    filters: Filters,
    cursor: CursorParam = None,
    limit: Limit = PAGE,
    sort: Sort = "created_at",
) -> Response:
    rows, next_cursor = await actions.page(
        filters, limit=limit, order="desc", cursor=cursor, skip=0, sort=sort
    )
    return render(
        request,
        "actions.html",
        rows=rows,
        filters=filters,
        more=_next_link(request, "/ui/actions", next_cursor),
        more_rows=_next_link(request, "/ui/actions/rows", next_cursor),
    )


@router.get("/actions/rows")
async def action_rows(
    request: Request,
    tenant: ConsoleTenant,
    actions: Actions,
    filters: Filters,
    cursor: CursorParam = None,
    limit: Limit = PAGE,
    sort: Sort = "created_at",
) -> Response:
    """The next page of the list as table rows (what "Load more" appends)."""
    rows, next_cursor = await actions.page(
        filters, limit=limit, order="desc", cursor=cursor, skip=0, sort=sort
    )
    return render(
        request,
        "_action_rows.html",
        rows=rows,
        more=_next_link(request, "/ui/actions", next_cursor),
        more_rows=_next_link(request, "/ui/actions/rows", next_cursor),
    )


@router.get("/actions/{action_id}")
async def action_page(
    request: Request,
    tenant: ConsoleTenant,
    actions: Actions,
    timelines: Timelines,
    action_id: UUID,
) -> Response:
    action = ActionRead.model_validate(await actions.get(action_id))
    timeline = await timelines.of(action.correlation_id, 200) if action.correlation_id else None
    children, _ = await actions.page(
        ActionFilter(parent_id=action.id), limit=200, order="asc", cursor=None, skip=0
    )
    descendants, more = await actions.descendants(action.id, WATERFALL_LIMIT)
    return render(
        request,
        "action.html",
        action=action,
        timeline=timeline.entries if timeline else [],
        timeline_truncated=timeline.truncated if timeline else False,
        children=children,
        waterfall=waterfall(action.model_dump(), descendants) if descendants else [],
        waterfall_truncated=more,
    )


# Failed


@router.get("/failed")
async def failed_page(
    request: Request,
    tenant: ConsoleTenant,
    actions: Actions,
    stats: Stats,
    filters: Filters,
    range: Range = "24h",
    cursor: CursorParam = None,
) -> Response:
    f = ranged(filters, range)
    failed = replace(f, statuses=tuple(sorted(FAILED)))
    rows, next_cursor = await actions.page(failed, limit=PAGE, order="desc", cursor=cursor, skip=0)
    patterns = await stats.failures(failed, limit=50)
    more_params = [("status", s) for s in sorted(FAILED)]
    if f.since:
        more_params.append(("since", f.since.isoformat()))
    if f.until:
        more_params.append(("until", f.until.isoformat()))
    return render(
        request,
        "failed.html",
        rows=rows,
        patterns=patterns,
        range=range,
        since=f.since,
        more=_rows_link("/ui/actions", more_params, next_cursor),
        more_rows=_rows_link("/ui/actions/rows", more_params, next_cursor),
    )


def _rows_link(path: str, params: list[tuple[str, str]], cursor: PageCursor | None) -> str | None:
    if cursor is None:
        return None
    return f"{path}?{urlencode([*params, ('cursor', cursor.encode())])}"


# Statistics


@router.get("/stats")
async def stats_page(
    request: Request,
    tenant: ConsoleTenant,
    stats: Stats,
    filters: Filters,
    range: Range = "24h",
) -> Response:
    f = ranged(filters, range)
    summary = await stats.summary(f)
    series = await stats.timeseries(f, interval_for(f))
    return render(
        request,
        "stats.html",
        summary=summary,
        breakdowns=breakdowns(summary),
        chart=chart_data(series),
        range=range,
        since=f.since,
        until=f.until,
        filters=filters,
    )


# Audit


@router.get("/audits")
async def audits_page(
    request: Request,
    tenant: ConsoleTenant,
    audits: Audits,
    action: Annotated[str | None, Query(max_length=100)] = None,
    resource_type: Annotated[str | None, Query(max_length=100)] = None,
    resource_id: Annotated[str | None, Query(max_length=255)] = None,
    user_id: Annotated[str | None, Query(max_length=255)] = None,
    correlation_id: Annotated[str | None, Query(max_length=255)] = None,
    since: QueryTime | None = None,
    until: QueryTime | None = None,
    cursor: CursorParam = None,
    fragment: bool = False,
) -> Response:
    filters = AuditFilters(
        action, resource_type, resource_id, user_id, since, until, correlation_id=correlation_id
    )
    rows, next_cursor = await audits.list(tenant.tenant_id, filters, cursor, 0, PAGE)
    template = "_audit_rows.html" if fragment else "audits.html"
    more = _next_link(request, "/ui/audits", next_cursor)
    return render(
        request,
        template,
        rows=[AuditRead.model_validate(row) for row in rows],
        more=more,
        more_rows=f"{more}&fragment=true" if more else None,
    )


@router.get("/audits/verify")
async def verify_page(request: Request, tenant: ConsoleTenant, audits: Audits) -> Response:
    result = await audits.verify(tenant.tenant_id)
    return render(request, "verify.html", result=result)


@router.get("/audits/resource/{resource_type}/{resource_id:path}")
async def trail_page(
    request: Request,
    tenant: ConsoleTenant,
    audits: Audits,
    resource_type: Annotated[str, Path(max_length=100)],
    resource_id: Annotated[str, Path(max_length=255)],
    cursor: CursorParam = None,
    at: QueryTime | None = None,
) -> Response:
    rows, next_cursor = await audits.trail(
        tenant.tenant_id, resource_type, resource_id, cursor, 0, 100
    )
    state = None
    if at is not None and rows:
        state = await audits.state_at(tenant.tenant_id, resource_type, resource_id, at)
    more = None
    if next_cursor is not None:
        more = request.url.path + f"?cursor={next_cursor.encode()}"
    return render(
        request,
        "trail.html",
        rows=[AuditRead.model_validate(row) for row in rows],
        resource_type=resource_type,
        resource_id=resource_id,
        more=more,
        state=state,
    )


# Live tail

TAIL_FILTERS = (
    "action_type",
    "provider_name",
    "service",
    "user_id",
    "session_id",
    "correlation_id",
)


@router.get("/tail")
async def tail_page(request: Request, tenant: ConsoleTenant) -> Response:
    """New actions as they are recorded (the page's script reads /ui/tail/events)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k in TAIL_FILTERS]
    return render(request, "tail.html", query=f"?{urlencode(kept)}" if kept else "")


@router.get("/tail/events")
async def tail_events(
    request: Request,
    tenant: ConsoleTenant,
    query: Annotated[StreamQuery, Query()],
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> Response:
    """The tenant's live actions (SSE), with the stream API's filters; the cookie signs in."""
    actions_only = query.model_copy(update={"kinds": "action"})
    return await sse_response(streams_state(request.app), tenant, actions_only, last_event_id)


# Session report


@router.get("/sessions")
async def sessions_page(
    request: Request,
    tenant: ConsoleTenant,
    session_id: Annotated[str | None, Query(max_length=255)] = None,
) -> Response:
    if session_id:
        return RedirectResponse(f"/ui/sessions/{quote(session_id, safe='')}", status_code=303)
    return render(request, "sessions.html")


_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


@router.get("/sessions/{session_id:path}")
async def session_page(
    request: Request,
    tenant: ConsoleTenant,
    actions: Actions,
    stats: Stats,
    session_id: Annotated[str, Path(min_length=1, max_length=255)],
    format: Annotated[str, Query(pattern="^(html|json)$")] = "html",
) -> Response:
    report = await session_report(actions, stats, session_id)
    if format == "json":
        name = _UNSAFE_FILENAME.sub("_", session_id)[:100] or "session"
        return JSONResponse(
            _jsonable(report),
            headers={"Content-Disposition": f'attachment; filename="session-{name}.json"'},
        )
    return render(request, "session.html", report=report)


def _jsonable(value: object) -> object:
    return jsonable_encoder(value)


def install_console(app: FastAPI, settings: Settings) -> None:
    """Serve the console: its routes, its static files, and the signer of its cookies."""
    secret = (
        settings.console_secret.get_secret_value().encode()
        if settings.console_secret is not None
        else secrets.token_bytes(32)
    )
    console_state(app).console_signer = SessionSigner(secret, settings.console_session_minutes * 60)
    app.include_router(router)
    app.include_router(destinations_router)
    app.include_router(schemas_router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="console-static")
