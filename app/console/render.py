"""Rendering console pages: one Jinja2 environment, autoescaping everything, and its helpers.

Every value that reaches a page (names, payloads, error messages) goes through Jinja2's HTML
escaping; nothing here marks text as safe. Payloads are shown as pretty JSON text inside
`<pre>`, escaped like any other text, so a stored `<script>` is displayed, never run. Data
for scripts travels in `<script type="application/json">` blocks written with `tojson`,
which escapes `<`, `>`, `&` and quotes, and is read with `JSON.parse`.
"""

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.console.state import console_signer

TEMPLATES = Path(__file__).parent / "templates"

STATUS_ICONS = {
    "success": "✅",
    "failure": "❌",
    "timeout": "❌",
    "pending": "⏳",
    "in_progress": "⏳",
    "retry": "⏳",
    "warning": "⚠️",
    "cancelled": "🚫",
}


def status_icon(status: str) -> str:
    return STATUS_ICONS.get(status, "•")


def when(value: datetime | str | None) -> str:
    """A timestamp as `YYYY-MM-DD HH:MM:SS` UTC (the console shows every time in UTC)."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.strftime("%Y-%m-%d %H:%M:%S")


def iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat().replace("+00:00", "Z")


def ms(value: float | None) -> str:
    """A duration for people: `245 ms`, `4.2 s`, `3 min 5 s`."""
    if value is None:
        return "\u2013"
    if value < 1000:
        return f"{value:.0f} ms" if float(value).is_integer() else f"{value:.1f} ms"
    if value < 60_000:
        return f"{value / 1000:.1f} s"
    minutes, seconds = divmod(round(value / 1000), 60)
    return f"{minutes} min {seconds} s"


def percent(value: float | None) -> str:
    return "\u2013" if value is None else f"{value * 100:.1f} %"


def pretty_json(value: Any) -> str:
    """Indented JSON text (escaped by the template like any text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def short_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        icon=status_icon, when=when, iso=iso, ms=ms, percent=percent,
        pretty=pretty_json, compact=short_json,
    )  # fmt: skip
    return env


ENVIRONMENT = _environment()


def query_with(request: Request, **changes: Any) -> str:
    """The current query string with some parameters replaced (None drops one), as `?…`."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    for name, value in changes.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        kept.extend((name, str(item)) for item in values)
    return f"?{urlencode(kept)}" if kept else ""


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A console page; the base template gets the request, the form token and the nav."""
    signer = console_signer(request.app)
    session = getattr(request.state, "console_session", None)
    context.setdefault("signed_in", session is not None)
    context.setdefault("form_token", signer.form_token(session) if session else "")
    html = ENVIRONMENT.get_template(template).render(
        request=request,
        params=request.query_params,
        query_with=lambda **changes: query_with(request, **changes),
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=headers)
