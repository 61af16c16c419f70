"""405 for a method a path lacks, even where a path parameter would take the path's word.

The router tries routes in order and takes the first whose path and method match, so
`PATCH /api/v1/logs/actions/batch` is taken by `PATCH /actions/{action_id}` (whose id "batch"
then fails as a UUID: a 422), although `/actions/batch` is a path of its own that has no PATCH.
As `allowed_methods` (app/core/errors.py) ranks them, a literal segment wins over a parameter:
the path is `/actions/batch`'s, and a method it lacks is a 405 with `Allow: POST`.

`LiteralPathsFirst` answers exactly those requests before routing. It knows, from the OpenAPI
document, each path template that some template with more parameters also matches (the only
paths where the router can pick the wrong route), so a request costs a dictionary look-up and a
few regular expressions at most; every other request goes straight on.
"""

import re
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import ErrorResponse

_PARAMETER = re.compile(r"\\\{[^}]+\\\}")


@dataclass(frozen=True)
class _Template:
    pattern: re.Pattern[str]
    parameters: int
    methods: frozenset[str]


def _templates(paths: dict[str, dict[str, object]]) -> list[_Template]:
    return [
        _Template(
            re.compile(_PARAMETER.sub("[^/]+", re.escape(path))),
            path.count("{"),
            frozenset(method.upper() for method in item),
        )
        for path, item in paths.items()
    ]


def shadowed(paths: dict[str, dict[str, object]]) -> list[_Template]:
    """The templates that a template with more parameters also matches."""
    templates = _templates(paths)
    samples = [re.sub(r"\{[^}]+\}", "x", path) for path in paths]
    return [
        literal
        for literal, sample in zip(templates, samples, strict=True)
        if any(
            other.parameters > literal.parameters and other.pattern.fullmatch(sample)
            for other in templates
        )
    ]


class LiteralPathsFirst:
    """Answers 405 (with `Allow`) to a method that a literal path lacks (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._shadowed: list[_Template] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._shadowed is None:
                self._shadowed = shadowed(scope["app"].openapi()["paths"])
            method = "GET" if scope["method"] == "HEAD" else scope["method"]
            for template in self._shadowed:
                if method not in template.methods and template.pattern.fullmatch(scope["path"]):
                    allow = ", ".join(sorted(template.methods))
                    response = ErrorResponse(
                        {"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": allow}
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
