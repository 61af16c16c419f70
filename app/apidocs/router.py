"""Swagger UI at /docs and ReDoc at /redoc, with every asset served by the service itself.

FastAPI's defaults fetch Swagger UI and ReDoc from a public CDN (and ReDoc's fonts from
Google), so the pages are blank on a machine without internet access. The files here are
copied from the npm packages `swagger-ui-dist` 5.35.0 (Apache-2.0) and `redoc` 2.5.4 (MIT),
licences beside them; nothing on these pages leaves the service's origin. Swagger UI's
online validator badge is switched off for the same reason, and the one URL ReDoc's bundle
fetched by itself (the sidebar's Redocly logo, from cdn.redoc.ly) was edited to point at a
local `logo-mini.svg`: the only change to the vendored files.

Both pages carry a Content-Security-Policy, as the console does: scripts only from this origin
plus the page's own inline start-up script (allowed by its SHA-256, computed from the page as
served), connections only to this origin (the OpenAPI document, "Try it out"), no plugins, no
framing. Styles may be inline: both bundles set styles from their scripts (ReDoc's
styled-components writes `<style>` elements), and ReDoc runs its search in a worker made
from a `blob:` URL.
"""

import base64
import hashlib
import re
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.apidocs.examples import install_body_examples

STATIC_DIR = Path(__file__).parent / "static"
STATIC_URL = "/docs-static"

router = APIRouter(include_in_schema=False)

CSP = (
    "default-src 'none'; script-src 'self'{inline}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
    "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def with_csp(page: HTMLResponse) -> HTMLResponse:
    """`page` with a Content-Security-Policy that allows its inline scripts by their hash."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(bytes(page.body).decode())
    )
    page.headers["Content-Security-Policy"] = CSP.format(inline=hashes)
    return page


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return with_csp(
        get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Action Log Service - Swagger UI",
            swagger_js_url=f"{STATIC_URL}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_URL}/swagger-ui/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return with_csp(
        get_redoc_html(
            openapi_url="/openapi.json",
            title="Action Log Service - ReDoc",
            redoc_js_url=f"{STATIC_URL}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_URL}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )
    )


def install_api_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets (create the app with docs_url=None, redoc_url=None)."""
    app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="docs-static")
    install_body_examples(app)
