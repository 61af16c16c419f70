"""What every console route does around its handler: clean the query, secure and render.

- Empty query parameters are dropped before FastAPI reads them: a filter form submits every
  field, and an empty `since=` means "no filter", not an invalid time. The console then
  parses filters with the API's own dependencies, so both read a query the same way.
- Errors become HTML pages with the same status as the API would answer (a 422 names the
  bad field), and a missing or dead session becomes the sign-in page (303 to it for GETs).
- Every response gets the console's security headers: a strict Content-Security-Policy
  (scripts, styles, images and connections from this origin only, no inline scripts or
  styles, no plugins, forms post only here, `frame-ancestors` from CONSOLE_FRAME_ANCESTORS),
  `nosniff`, `Cache-Control: no-store` (pages hold tenant data) and a same-origin referrer.
"""

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from app.console.auth import SignInRequired
from app.console.render import render
from app.core.errors import ServiceError
from app.core.state import core_state

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors {frame_ancestors}"
)


def security_headers(frame_ancestors: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP.format(frame_ancestors=frame_ancestors),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }


def _drop_empty_parameters(request: Request) -> None:
    raw = request.scope.get("query_string", b"").decode("latin-1")
    pairs = parse_qsl(raw, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if v.strip()]
    if len(kept) != len(pairs):
        request.scope["query_string"] = urlencode(kept).encode("latin-1")


def _field(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("query", "path", "body")]
    return ".".join(parts) or "request"


def _messages(errors: Any) -> list[str]:
    """Readable lines from an error detail: a text, or FastAPI's list of {loc, msg}."""
    if not isinstance(errors, list | tuple):
        return [str(errors)]
    return [
        f"{_field(e.get('loc', ()))}: {e.get('msg', 'invalid')}" if isinstance(e, dict) else str(e)
        for e in errors
    ]


def _sign_in_redirect(request: Request, message: str | None) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/ui/sign-in?next={quote(target, safe='')}"
    if message:
        # A dead key: show why on the sign-in page instead of a silent redirect.
        return render(request, "sign_in.html", 401, next=target, error=message, signed_in=False)
    return RedirectResponse(location, status_code=303)


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            _drop_empty_parameters(request)
            try:
                response = await handler(request)
            except SignInRequired as exc:
                response = _sign_in_redirect(request, exc.message)
            except RequestValidationError as exc:
                messages = _messages(exc.errors())
                response = render(request, "error.html", 422, status=422, messages=messages)
            except HTTPException as exc:
                cause = exc.__cause__
                if not isinstance(cause, ServiceError):
                    raise
                response = _error_page(request, cause)
            except ServiceError as exc:
                response = _error_page(request, exc)
            frame_ancestors = core_state(request.app).settings.console_frame_ancestors
            for name, value in security_headers(frame_ancestors).items():
                response.headers.setdefault(name, value)
            return response

        return handle


def _error_page(request: Request, exc: ServiceError) -> Response:
    messages = _messages(exc.detail)
    return render(request, "error.html", exc.status_code, status=exc.status_code, messages=messages)
