"""The embedded console at /ui/embed: what a viewer link opens, read-only and narrowed.

`/ui/embed?token=…` checks the token, starts a viewer session (a cookie, app/viewer/cookie.py),
records one audit event for it, and redirects to the first page without the token, so that it
never stays in the address bar, the history or a `Referer`. Every page then re-reads the
token (a revoked or expired one ends the session at once) and computes its lists and figures
under the token's filters (app/viewer/scope.py) with the console's own services. There is no
form that writes: the only forms are GET filters, and export exists only for tokens minted
with `can_export`. Pages may be framed by the token's `embed_origin` alone
(`Content-Security-Policy: frame-ancestors`), by nothing without one.
"""

from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from jinja2 import ChoiceLoader, FileSystemLoader
from starlette.exceptions import HTTPException

from app.actions.dependencies import service_for
from app.actions.export import ActionExport, ExportFormat
from app.actions.filters import ActionFilter, Filters
from app.actions.schemas import ActionRead, UtcDatetime
from app.actions.service import ActionService
from app.actions.statuses import FAILED
from app.audits.schemas import AuditFilters, AuditRead
from app.audits.service import AuditService
from app.console.render import ENVIRONMENT, TEMPLATES
from app.console.routing import security_headers
from app.console.state import console_signer
from app.console.views import Range, breakdowns, ranged
from app.core.auth import Actor, ReadSessionDep, SessionDep, TenantContext
from app.core.db import utcnow
from app.core.errors import Forbidden, NotFound, ServiceError
from app.core.state import core_state
from app.core.tenancy import bind_request_tenant
from app.stats.service import StatsService
from app.streams.service import StreamQuery
from app.streams.sse import sse_response
from app.viewer import cookie, tokens
from app.viewer.scope import ViewerScope
from app.viewer.service import ViewerRefused, ViewerTokenService

HERE = FilePath(__file__).parent
ENV = ENVIRONMENT.overlay(loader=ChoiceLoader([FileSystemLoader(HERE / "templates"),
                                               FileSystemLoader(TEMPLATES)]))  # fmt: skip
PAGE = 50
CursorParam = Annotated[str | None, Query(max_length=512)]


# Rendering and the frame around every page


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    scope: ViewerScope | None = getattr(request.state, "viewer_scope", None)
    session: cookie.ViewerSession | None = getattr(request.state, "viewer_session", None)
    theme, accent = cookie.look(
        request.query_params.get("theme") or (session.theme if session else None),
        request.query_params.get("accent") or (session.accent if session else None),
    )
    html = ENV.get_template(template).render(
        request=request, params=request.query_params, scope=scope, theme=theme, accent=accent,
        **context,
    )  # fmt: skip
    return HTMLResponse(html, status_code=status_code)


def _drop_empty_parameters(request: Request) -> None:
    pairs = parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), True)
    kept = [(k, v) for k, v in pairs if v.strip()]
    if len(kept) != len(pairs):
        request.scope["query_string"] = urlencode(kept).encode("latin-1")


def _messages(errors: Any) -> list[str]:
    if not isinstance(errors, list | tuple):
        return [str(errors)]
    return [
        ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "path")) + ": " + e["msg"]
        if isinstance(e, dict) else str(e)
        for e in errors
    ]  # fmt: skip


class ViewerRoute(APIRoute):
    """Refusals and errors as pages of the embedded console, and its security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            _drop_empty_parameters(request)
            origin: str | None = None
            try:
                response = await handler(request)
            except ViewerRefused as exc:
                origin = exc.embed_origin
                response = render(request, "viewer_refused.html", 401, message=exc.message)
            except RequestValidationError as exc:
                messages = _messages(exc.errors())
                response = render(request, "viewer_error.html", 422, messages=messages)
            except (HTTPException, ServiceError) as exc:
                cause = exc if isinstance(exc, ServiceError) else exc.__cause__
                if not isinstance(cause, ServiceError):
                    raise
                messages = _messages(cause.detail)
                response = render(
                    request, "viewer_error.html", cause.status_code, messages=messages
                )
            scope = getattr(request.state, "viewer_scope", None)
            origin = scope.embed_origin if scope is not None else origin
            for name, value in security_headers(origin or "'none'").items():
                response.headers.setdefault(name, value)
            return response

        return handle


router = APIRouter(prefix="/ui/embed", route_class=ViewerRoute, include_in_schema=False)


# The session


def _signer(request: Request) -> Any:
    return console_signer(request.app)


async def viewer_scope(request: Request, db: ReadSessionDep) -> ViewerScope:
    """The scope of the request's viewer session, the token re-checked now; or ViewerRefused."""
    session = cookie.read(_signer(request), request.cookies.get(cookie.COOKIE_NAME))
    if session is None:
        raise ViewerRefused("This viewer session has ended: open the viewer link again.")
    request.state.viewer_session = session
    bind_request_tenant(request.state, session.tenant_id)
    scope = await ViewerTokenService(db, session.tenant_id).open(session.token_id, None)
    request.state.viewer_scope = scope
    return scope


Scope = Annotated[ViewerScope, Depends(viewer_scope)]


def _tenant(request: Request, scope: ViewerScope) -> TenantContext:
    actor = Actor.from_request(request, f"viewer:{scope.token_id}")
    return TenantContext(scope.tenant_id, scope.token_id, frozenset({"read"}), actor)


def _kind(scope: ViewerScope, kind: str) -> None:
    if not scope.sees(kind):  # type: ignore[arg-type]
        raise NotFound(f"this viewer link does not show {kind} records")


@router.get("")
async def open_link(
    request: Request,
    db: SessionDep,
    token: Annotated[str | None, Query(max_length=200)] = None,
    theme: Annotated[str | None, Query(max_length=10)] = None,
    accent: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """Exchange a viewer token for a viewer session; the token leaves the address bar."""
    presented = tokens.parse(token)
    if presented is None:
        raise ViewerRefused("This viewer link is not valid.")
    bind_request_tenant(request.state, presented.tenant_id)
    service = ViewerTokenService(db, presented.tenant_id)
    scope = await service.open(presented.token_id, presented)
    request.state.viewer_scope = scope
    token_row = await service.tokens.get(presented.token_id)
    assert token_row is not None
    lifetime = min(
        _signer(request).lifetime_seconds,
        int((token_row.expires_at - utcnow()).total_seconds()) + 1,
    )
    session = cookie.ViewerSession(
        scope.tenant_id,
        scope.token_id,
        int(utcnow().timestamp()) + lifetime,
        *cookie.look(theme, accent),
    )
    actor = Actor.from_request(request, f"viewer:{scope.token_id}")
    opened = {
        "link_id": str(scope.token_id),  # (a key named *token* would be redacted)
        "filters": scope.filters.model_dump(exclude_none=True),
        "kinds": list(scope.kinds),
    }
    await AuditService(db, core_state(request.app).payload_rules).log(
        scope.tenant_id, "session_start", "viewer_link", str(scope.token_id), actor=actor,
        metadata=opened,
    )  # fmt: skip
    first = "/ui/embed/actions" if scope.sees("action") else "/ui/embed/audits"
    response = RedirectResponse(first, status_code=303)
    cookie.set_cookie(response, request, cookie.issue(_signer(request), session), lifetime,
                      scope.embed_origin)  # fmt: skip
    return response


@router.get("/theme.css")
async def theme_css(accent: Annotated[str | None, Query(max_length=10)] = None) -> Response:
    """The accent colour of the query (the pages' CSP allows no inline style)."""
    _, colour = cookie.look(None, accent)
    body = f":root {{ --accent: #{colour}; }}\n" if colour else ""
    return Response(body, media_type="text/css", headers={"Cache-Control": "max-age=86400"})


# Services under the viewer's tenant


async def _actions(request: Request, scope: Scope, db: ReadSessionDep) -> ActionService:
    return service_for(request.app.state, db, scope.tenant_id)


async def _stats(scope: Scope, db: ReadSessionDep) -> StatsService:
    return StatsService(db, scope.tenant_id)


async def _audits(request: Request, scope: Scope, db: ReadSessionDep) -> AuditService:
    return AuditService(db, core_state(request.app).payload_rules)


Actions = Annotated[ActionService, Depends(_actions)]
Stats = Annotated[StatsService, Depends(_stats)]
Audits = Annotated[AuditService, Depends(_audits)]


def _next(request: Request, cursor: Any) -> str | None:
    if cursor is None:
        return None
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    return f"{request.url.path}?{urlencode([*params, ('cursor', cursor.encode())])}"


# Pages


@router.get("/actions")
async def actions_page(
    request: Request, scope: Scope, actions: Actions, filters: Filters, cursor: CursorParam = None
) -> Response:
    _kind(scope, "action")
    f = scope.actions(filters)
    rows, next_cursor = await actions.page(f, limit=PAGE, order="desc", cursor=cursor, skip=0)
    return render(request, "viewer_actions.html", rows=rows, more=_next(request, next_cursor))


@router.get("/actions/{action_id}")
async def action_page(
    request: Request, scope: Scope, actions: Actions, action_id: UUID
) -> Response:
    _kind(scope, "action")
    action = await actions.get(action_id)
    if not scope.allows(action):
        raise NotFound(f"action {action_id} not found")
    children, _ = await actions.page(
        scope.actions(ActionFilter(parent_id=action.id)),
        limit=200,
        order="asc",
        cursor=None,
        skip=0,
    )
    return render(request, "viewer_action.html", action=ActionRead.model_validate(action),
                  children=children)  # fmt: skip


@router.get("/failed")
async def failed_page(
    request: Request,
    scope: Scope,
    actions: Actions,
    stats: Stats,
    filters: Filters,
    range: Range = "24h",
    cursor: CursorParam = None,
) -> Response:
    _kind(scope, "action")
    f = replace(scope.actions(ranged(filters, range)), statuses=tuple(sorted(FAILED)))
    rows, next_cursor = await actions.page(f, limit=PAGE, order="desc", cursor=cursor, skip=0)
    patterns = await stats.failures(f, limit=50)
    return render(request, "viewer_failed.html", rows=rows, patterns=patterns, range=range,
                  more=_next(request, next_cursor))  # fmt: skip


@router.get("/stats")
async def stats_page(
    request: Request, scope: Scope, stats: Stats, filters: Filters, range: Range = "24h"
) -> Response:
    _kind(scope, "action")
    f = scope.actions(ranged(filters, range))
    summary = await stats.summary(f)
    return render(request, "viewer_stats.html", summary=summary, breakdowns=breakdowns(summary),
                  range=range, since=f.since)  # fmt: skip


@router.get("/audits")
async def audits_page(
    request: Request,
    scope: Scope,
    audits: Audits,
    action: Annotated[str | None, Query(max_length=100)] = None,
    resource_type: Annotated[str | None, Query(max_length=100)] = None,
    user_id: Annotated[str | None, Query(max_length=255)] = None,
    since: UtcDatetime | None = None,
    cursor: CursorParam = None,
) -> Response:
    _kind(scope, "audit")
    f = scope.audits(AuditFilters(action, resource_type, None, user_id, since))
    rows, next_cursor = await audits.list(scope.tenant_id, f, cursor, 0, PAGE)
    return render(request, "viewer_audits.html", rows=[AuditRead.model_validate(r) for r in rows],
                  more=_next(request, next_cursor), title="Audit log")  # fmt: skip


@router.get("/audits/resource/{resource_type}/{resource_id:path}")
async def trail_page(
    request: Request,
    scope: Scope,
    audits: Audits,
    resource_type: Annotated[str, Path(max_length=100)],
    resource_id: Annotated[str, Path(max_length=255)],
    cursor: CursorParam = None,
) -> Response:
    _kind(scope, "audit")
    f = scope.audits(AuditFilters(resource_type=resource_type, resource_id=resource_id))
    rows, next_cursor = await audits.list(scope.tenant_id, f, cursor, 0, PAGE)
    title = f"Trail of {resource_type} {resource_id}"
    return render(request, "viewer_audits.html", rows=[AuditRead.model_validate(r) for r in rows],
                  more=_next(request, next_cursor), title=title)  # fmt: skip


@router.get("/tail")
async def tail_page(request: Request, scope: Scope) -> Response:
    _kind(scope, "action")
    return render(request, "viewer_tail.html")


@router.get("/tail/events")
async def tail_events(
    request: Request,
    scope: Scope,
    db: ReadSessionDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> Response:
    """The viewer's live actions (SSE): the stream's filters are the token's alone."""
    _kind(scope, "action")
    if not scope.live_tail:
        raise NotFound("the live tail cannot apply this viewer link's filters")
    await db.close()  # the stream holds no connection of the request's while it is open
    query = StreamQuery.model_validate(scope.stream_params())
    return await sse_response(request.app.state, _tenant(request, scope), query, last_event_id)


@router.get("/export")
async def export(
    request: Request,
    scope: Scope,
    db: ReadSessionDep,
    filters: Filters,
    fmt: Annotated[ExportFormat, Query(alias="format")] = "csv",
) -> StreamingResponse:
    """The viewer's actions as CSV or NDJSON, for links minted with `can_export`."""
    _kind(scope, "action")
    if not scope.can_export:
        raise Forbidden("this viewer link does not allow export")
    await db.close()  # the export reads in sessions of its own (SQLite has one connection)
    sessionmaker = core_state(request.app).read_sessionmaker
    job = ActionExport(sessionmaker, scope.tenant_id, scope.actions(filters), "desc", fmt)
    return StreamingResponse(
        await job.open(),
        media_type=job.media_type,
        headers={"Content-Disposition": f'attachment; filename="{job.filename}"'},
    )


def install_viewer(app: FastAPI) -> None:
    """Serve the embedded console (after the console, whose secret signs its cookies)."""
    app.include_router(router)
    app.mount("/ui/embed/static", StaticFiles(directory=HERE / "static"), name="viewer-static")
