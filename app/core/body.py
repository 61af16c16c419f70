"""The one reader of request bodies, for the routes and the fast lanes alike, with one set of
answers for a body that cannot be used.

Reading (`read_body`): the whole body, within `BODY_TIMEOUT_SECONDS` — a client that sends
fewer bytes than its `Content-Length` promised and then nothing more is answered 408 and the
connection closed, instead of holding a worker's connection for ever. A client that goes away
before its body is complete raises `ClientDisconnected`: nobody is left to answer, and it is
counted as a client disconnect (status 499 in the access log and `/metrics`), never as a 5xx.

Parsing (`parse_json`, the routes' bodies on the JSON API): the answers name the problem —
a body that is not UTF-8 text, not JSON (with the position), nested deeper than any body of
the service can be (`MAX_JSON_DEPTH` plus the levels of a batch around a field), or holding
an integer with more digits than a number can be read with (4300, Python's limit). The lanes
validate their bodies themselves, straight from the bytes, and hand every body they do not
accept to the routes, so those get these same answers.
"""

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import ServiceError, invalid
from app.core.redact import json_depth_exceeds

NOT_UTF8 = "body is not valid JSON (UTF-8 text expected)"
# Levels a body puts around its JSON fields: {"events": [{"metadata": …}]}
BODY_LEVELS = 3
JSON_API_PREFIXES = ("/api/", "/action-logs/")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class ClientDisconnected(Exception):
    """The client went away before sending the whole body it announced."""


class RequestTimeout(ServiceError):
    status_code = 408
    default_detail = "Request body not received in time"
    headers: ClassVar[dict[str, str] | None] = {"Connection": "close"}


async def read_body(receive: Receive, seconds: float) -> bytes:
    """The whole request body; RequestTimeout when it is not complete within `seconds`,
    ClientDisconnected when the client went away first."""
    chunks = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnected
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        raise RequestTimeout(
            f"Request body not received within {seconds:g} seconds (BODY_TIMEOUT_SECONDS)"
        ) from None


def replaying(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A `receive` that hands an already-read body on to the next app."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def parse_json(body: bytes, max_depth: int) -> Any:
    """The JSON value of a body, or a 422 naming why there is none (see the module)."""
    too_deep = invalid(("body",), f"JSON nested deeper than {max_depth} levels", "json_too_deep")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise invalid(("body",), NOT_UTF8, "json_invalid") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"body is not valid JSON: {exc.msg}"
        raise invalid(("body", exc.pos), message, "json_invalid") from None
    except RecursionError:
        raise too_deep from None
    except ValueError:  # an integer literal beyond the digits Python converts
        limit = sys.get_int_max_str_digits()
        message = f"numbers must have at most {limit} digits"
        raise invalid(("body",), message, "json_number_too_large") from None
    levels = max_depth + BODY_LEVELS
    if body.count(b"[") + body.count(b"{") > levels and json_depth_exceeds(value, levels):
        raise too_deep
    return value


def _has_body(scope: Scope) -> bool:
    headers = dict(scope["headers"])
    return headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers


class BodyReader:
    """Reads every request body with `read_body`, and checks those of the JSON API's writes
    with `parse_json`, before the routes see them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        settings = scope["app"].state.settings
        body = await read_body(receive, settings.body_timeout_seconds)
        if scope["method"] in _WITH_BODY and scope["path"].startswith(JSON_API_PREFIXES):
            parse_json(body, settings.max_json_depth)
        await self.app(scope, replaying(body, receive), send)
