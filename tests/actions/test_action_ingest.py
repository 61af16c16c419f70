"""The ingest lane: ordinary recording requests are served before the routes, the rest passed on.

The ingest lane (`FastLane`, app/core/lane.py) answers plain JSON POSTs to /actions and
/actions/batch with a live `write` key and a valid body itself, and hands every other request,
body included, to the FastAPI routes. This module proves that:

- it serves what it should: the app behind it is never called, the answer is the route's 201
  body, and the rows are stored as the route stores them (redacted, readable, tenant-scoped);
- it passes on what it should, with the very bytes the client sent;
- either way the client gets the answer the routes alone give (compared with the same app
  without the lane): the same errors, the same key rules, the same JSON parse.
"""

import copy
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from app.core.config import Settings
from app.core.lane import FastLane
from app.core.redact import REDACTED
from app.main import create_app, lane_options
from tests.actions.conftest import ACTIONS, BATCH, detail_text
from tests.conftest import ADMIN, ADMIN_TOKEN, TenantHandle, create_key

PASSED_ON = 299  # what the stand-in behind the lane answers: neither the lane nor a route does
ONE = {"action_type": "login", "request_payload": {"user": "ann", "password": "x"}}
JSON = {"Content-Type": "application/json"}
COMPARED = ("action_type", "user_id", "status", "request_payload", "response_data", "metadata")


class Downstream:
    """Stands in for the routes behind the lane: notes each request with its body, answers 299."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.calls.append((scope["method"], scope["path"], body))
        await PlainTextResponse("passed on", status_code=PASSED_ON)(scope, receive, send)


@dataclass
class Lane:
    """A lane in front of a `Downstream`, driven by `client`."""

    client: httpx.AsyncClient
    downstream: Downstream


def asgi_client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def lane(app: Any) -> AsyncIterator[Lane]:
    downstream = Downstream()
    ingest = FastLane(downstream, **lane_options(app.state))

    async def in_the_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app  # as Starlette sets it
        await ingest(scope, receive, send)

    async with asgi_client(in_the_app) as client:
        yield Lane(client, downstream)


def without_the_lane(app: Any) -> Any:
    """The same application (state, routes, middleware) minus the lane."""
    bare = copy.copy(app)
    bare.user_middleware = [m for m in app.user_middleware if m.cls is not FastLane]
    assert len(bare.user_middleware) == len(app.user_middleware) - 1
    bare.middleware_stack = None  # built again on the first request, from the list above
    return bare


@pytest.fixture(scope="session")
def routes_app(app: Any) -> Any:
    return without_the_lane(app)


@pytest.fixture
async def routes(routes_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The routes alone: what every request would get if there were no lane."""
    async with asgi_client(routes_app) as client:
        yield client


def nested(depth: int) -> Any:
    """A JSON object nested `depth` levels deep."""
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


def as_bytes(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def answer(response: httpx.Response) -> tuple[int, Any]:
    """Status and body (parsed when JSON: a replayed body may order its keys differently)."""
    json_body = response.headers.get("content-type") == "application/json"
    return response.status_code, response.json() if json_body else response.content


def compared(record: dict[str, Any]) -> dict[str, Any]:
    """The fields of a stored action that come from the body (not ids or times)."""
    return {name: record[name] for name in COMPARED}


async def stored(client: httpx.AsyncClient, tenant: TenantHandle, action_id: str) -> Any:
    response = await client.get(f"{ACTIONS}/{action_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def admin_key(client: httpx.AsyncClient, tenant: TenantHandle, **body: Any) -> Any:
    response = await client.post(
        f"/api/v1/admin/tenants/{tenant.id}/keys",
        json={"name": "ingest", "scopes": ["write"], **body},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def keys(client: httpx.AsyncClient, tenant: TenantHandle, engine: AsyncEngine) -> Any:
    """Keys presented by the tests, by kind: one that may write, and one per way to be refused."""
    revoked = await admin_key(client, tenant)
    gone = await client.delete(
        f"/api/v1/admin/tenants/{tenant.id}/keys/{revoked['id']}", headers=ADMIN
    )
    assert gone.status_code == 200, gone.text
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    expired = await admin_key(client, tenant, expires_at=soon)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE api_keys SET expires_at = :past WHERE prefix = :prefix"),
            {"past": datetime.now(UTC) - timedelta(seconds=1), "prefix": expired["prefix"]},
        )
    return {
        "write": tenant.key,
        "write only": await create_key(client, tenant, ["write"]),
        "read only": await create_key(client, tenant, ["read"]),
        "revoked": revoked["key"],
        "expired": expired["key"],
        "unknown": "alk_0123456789ab_secret",
        "malformed": "nonsense",
        "none": None,
    }


def presenting(key: str | None) -> dict[str, str]:
    return {} if key is None else {"X-API-Key": key}


class TestTheLaneServes:
    async def test_a_record(
        self,
        lane: Lane,
        routes: httpx.AsyncClient,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
    ) -> None:
        response = await lane.client.post(ACTIONS, json=ONE, headers=tenant.headers)
        assert response.status_code == 201, response.text
        assert lane.downstream.calls == []
        created = response.json()
        assert created["tenant_id"] == tenant.id
        assert created["request_payload"] == {"user": "ann", "password": REDACTED}
        assert await stored(client, tenant, created["id"]) == created
        by_route = await routes.post(ACTIONS, json=ONE, headers=tenant.headers)
        assert by_route.status_code == 201
        assert by_route.headers["content-type"] == response.headers["content-type"]
        assert by_route.json().keys() == created.keys()
        assert compared(by_route.json()) == compared(created)

    async def test_a_batch(
        self,
        lane: Lane,
        routes: httpx.AsyncClient,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
    ) -> None:
        items = [{**ONE, "action_type": f"step-{i}"} for i in range(3)]
        response = await lane.client.post(BATCH, json=items, headers=tenant.headers)
        assert response.status_code == 201, response.text
        assert lane.downstream.calls == []
        body = response.json()
        assert body.keys() == {"created", "ids"}
        assert body["created"] == 3
        for item, action_id in zip(items, body["ids"], strict=True):
            row = await stored(client, tenant, action_id)
            assert row["action_type"] == item["action_type"]
            assert row["request_payload"] == {"user": "ann", "password": REDACTED}
        by_route = await routes.post(BATCH, json=items, headers=tenant.headers)
        assert by_route.status_code == 201
        assert by_route.json().keys() == body.keys()
        assert by_route.json()["created"] == 3

    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param(lambda key: {"Authorization": f"Bearer {key}"}, id="bearer"),
            pytest.param(lambda key: {"Authorization": f"bearer {key}"}, id="bearer, lower case"),
            pytest.param(
                lambda key: {"X-API-Key": key, "Authorization": "Bearer garbage"},
                id="X-API-Key before a garbage bearer",
            ),
            pytest.param(
                lambda key: {"X-API-Key": key, "Content-Type": "application/json; charset=utf-8"},
                id="JSON with a charset",
            ),
        ],
    )
    async def test_other_ways_of_sending_an_ordinary_request(
        self,
        lane: Lane,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        headers: Callable[[str], dict[str, str]],
    ) -> None:
        sent = {**JSON, **headers(tenant.key)}
        response = await lane.client.post(ACTIONS, content=as_bytes(ONE), headers=sent)
        assert response.status_code == 201, response.text
        assert lane.downstream.calls == []
        assert (await stored(client, tenant, response.json()["id"]))["tenant_id"] == tenant.id

    async def test_a_write_only_key(self, lane: Lane, tenant: TenantHandle, keys: Any) -> None:
        response = await lane.client.post(ACTIONS, json=ONE, headers=presenting(keys["write only"]))
        assert response.status_code == 201, response.text
        assert lane.downstream.calls == []

    async def test_a_garbage_x_api_key_is_not_saved_by_a_good_bearer(
        self, client: httpx.AsyncClient, routes: httpx.AsyncClient, tenant: TenantHandle
    ) -> None:
        headers = {"X-API-Key": "garbage", "Authorization": f"Bearer {tenant.key}"}
        for either in (client, routes):
            response = await either.post(ACTIONS, json=ONE, headers=headers)
            assert response.status_code == 401
            assert response.json()["detail"] == "Invalid API key"


class TestTenantIsolation:
    async def test_a_record_made_by_the_lane_is_not_found_by_another_tenant(
        self,
        lane: Lane,
        client: httpx.AsyncClient,
        tenant: TenantHandle,
        other_tenant: TenantHandle,
    ) -> None:
        single = await lane.client.post(ACTIONS, json=ONE, headers=tenant.headers)
        batch = await lane.client.post(BATCH, json=[ONE], headers=tenant.headers)
        assert (single.status_code, batch.status_code) == (201, 201)
        assert lane.downstream.calls == []
        for action_id in (single.json()["id"], *batch.json()["ids"]):
            assert (await stored(client, tenant, action_id))["tenant_id"] == tenant.id
            url = f"{ACTIONS}/{action_id}"
            response = await client.get(url, headers=other_tenant.headers)
            assert response.status_code == 404
            assert "not found" in detail_text(response).lower()
        listed = await client.get(ACTIONS, headers=other_tenant.headers)
        assert listed.json() == []


@dataclass(frozen=True)
class PassedOn:
    """A request the lane must leave to the routes, and the routes' answer to it."""

    status: int
    key: str = "write"
    body: Any = field(default_factory=lambda: ONE)
    method: str = "POST"
    path: str = ACTIONS
    headers: dict[str, str] = field(default_factory=lambda: JSON)
    message: str = ""  # text the detail must contain
    loc: tuple[str | int, ...] | None = None  # a loc the detail must name


TOO_DEEP_TO_PARSE = b'{"action_type": "x", "metadata": ' + b'{"k": ' * 5000 + b"1" + b"}" * 5001

PASSED_ON_CASES = {
    "Idempotency-Key": PassedOn(201, headers={**JSON, "Idempotency-Key": "ingest-1"}),
    "Idempotency-Key, batch": PassedOn(
        201, path=BATCH, body=[ONE], headers={**JSON, "Idempotency-Key": "ingest-2"}
    ),
    "text/plain": PassedOn(
        415, headers={"Content-Type": "text/plain"}, message="must be application/json"
    ),
    "no content type": PassedOn(415, headers={}, message="must be application/json"),
    "missing key": PassedOn(401, key="none", message="Missing API key"),
    "unknown key": PassedOn(401, key="unknown", message="Invalid API key"),
    "malformed key": PassedOn(401, key="malformed", message="Invalid API key"),
    "revoked key": PassedOn(401, key="revoked", message="API key has been revoked"),
    "expired key": PassedOn(401, key="expired", message="API key has expired"),
    "read-only key": PassedOn(403, key="read only", message="API key lacks the 'write' scope"),
    "missing action_type": PassedOn(422, body={"user_id": "u"}, loc=("body", "action_type")),
    "extra field": PassedOn(422, body={**ONE, "colour": "red"}, loc=("body", "colour")),
    "malformed JSON": PassedOn(422, body=b'{"action_type": ', message="JSON"),
    "JSON too deep to parse": PassedOn(
        422, body=TOO_DEEP_TO_PARSE, message="JSON nested deeper than 32 levels"
    ),
    "empty batch": PassedOn(422, path=BATCH, body=[], loc=("body",)),
    "bad batch item": PassedOn(
        422, path=BATCH, body=[ONE, {"action_type": None}], loc=("body", 1, "action_type")
    ),
    "object to batch": PassedOn(422, path=BATCH, body=ONE, loc=("body",)),
    "1001 items": PassedOn(422, path=BATCH, body=[ONE] * 1001, message="1000"),
    "GET": PassedOn(200, method="GET", body=b"", headers={}),
    "trailing slash": PassedOn(307, path=f"{ACTIONS}/"),
    "another path": PassedOn(
        404,
        path=f"{ACTIONS}/{uuid4()}/steps",
        body={"step": "s", "status": "ok"},
        message="not found",
    ),
}
passed_on_cases = pytest.mark.parametrize(
    "case", list(PASSED_ON_CASES.values()), ids=list(PASSED_ON_CASES)
)


@passed_on_cases
async def test_the_lane_passes_on_the_very_bytes_sent(
    lane: Lane, keys: Any, case: PassedOn
) -> None:
    content = as_bytes(case.body)
    headers = {**case.headers, **presenting(keys[case.key])}
    response = await lane.client.request(case.method, case.path, content=content, headers=headers)
    assert response.status_code == PASSED_ON, response.text
    assert lane.downstream.calls == [(case.method, case.path, content)]


@passed_on_cases
async def test_what_is_passed_on_gets_the_routes_answer(
    client: httpx.AsyncClient, routes: httpx.AsyncClient, keys: Any, case: PassedOn
) -> None:
    content = as_bytes(case.body)
    headers = {**case.headers, **presenting(keys[case.key])}
    response = await client.request(case.method, case.path, content=content, headers=headers)
    assert response.status_code == case.status, response.text
    if case.message:
        assert case.message in detail_text(response)
    if case.loc is not None:
        assert list(case.loc) in [error["loc"] for error in response.json()["detail"]]
    alone = await routes.request(case.method, case.path, content=content, headers=headers)
    assert answer(alone) == answer(response)


async def streamed(size: int, batch: bool) -> AsyncIterator[bytes]:
    """An action with a blob of `size` bytes, in chunks, without a Content-Length."""
    yield b"[" * batch + b'{"action_type": "x", "request_payload": {"blob": "'
    for _ in range(size // 65536 + 1):
        yield b"x" * 65536
    yield b'"}}' + b"]" * batch


@pytest.mark.parametrize(("path", "limit"), [(ACTIONS, 1024 * 1024), (BATCH, 10 * 1024 * 1024)])
async def test_a_streamed_body_over_the_limit_is_413(
    client: httpx.AsyncClient,
    routes: httpx.AsyncClient,
    tenant: TenantHandle,
    path: str,
    limit: int,
) -> None:
    headers = {**tenant.headers, **JSON}
    batch = path == BATCH
    response = await client.post(path, content=streamed(limit, batch), headers=headers)
    assert response.status_code == 413
    assert f"exceeds the limit of {limit} bytes" in detail_text(response)
    alone = await routes.post(path, content=streamed(limit, batch), headers=headers)
    assert (alone.status_code, alone.json()) == (413, response.json())
    assert (await client.get(ACTIONS, headers=tenant.headers)).json() == []


async def test_an_idempotent_retry_is_replayed_by_the_route(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "ingest-retry"}
    first = await client.post(ACTIONS, json=ONE, headers=headers)
    retry = await client.post(ACTIONS, json=ONE, headers=headers)
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] == first.json()["id"]


BIG = 2**70
BIG_INTEGERS = {
    "action_type": "big",
    "request_payload": {"n": BIG, "negative": -BIG, "just_past_int64": 2**63},
    "response_data": [2**64, -(2**63) - 1],
    "metadata": {"m": 10**30 + 1},
}
TRICKY = {
    "integers beyond 64 bits": as_bytes(BIG_INTEGERS),
    "unicode, raw UTF-8": json.dumps(
        {
            "action_type": "café ✓",
            "user_id": "日本語",
            "request_payload": {"emoji": "😀", "separator": "\u2028", "rtl": "שלום"},
        },
        ensure_ascii=False,
    ).encode(),
    "unicode, escaped": json.dumps(
        {"action_type": "café ✓", "request_payload": {"emoji": "😀", "separator": "\u2028"}}
    ).encode(),
    "duplicate keys": (
        b'{"action_type": "first", "action_type": "dup",'
        b' "request_payload": {"k": 1, "k": 2, "password": "a", "password": "b"}}'
    ),
    "numbers": (
        b'{"action_type": "numbers", "request_payload":'
        b' {"f": 0.1, "e": 1e300, "tiny": 5e-324, "exp": 1E2, "neg": -7, "zero": -0}}'
    ),
    "escapes and white space": (
        b' \n{ "action_type" : "a\\/b\\"c\\\\d" ,\t"request_payload": {"tab": "\\t"} }\n '
    ),
    "at the depth limit": as_bytes({"action_type": "deep", "metadata": nested(32)}),
}
EXPECTED = {
    "integers beyond 64 bits": BIG_INTEGERS,
    "unicode, raw UTF-8": {
        "action_type": "café ✓",
        "user_id": "日本語",
        "request_payload": {"emoji": "😀", "separator": "\u2028", "rtl": "שלום"},
    },
    "unicode, escaped": {
        "action_type": "café ✓",
        "request_payload": {"emoji": "😀", "separator": "\u2028"},
    },
    "duplicate keys": {"action_type": "dup", "request_payload": {"k": 2, "password": REDACTED}},
    "escapes and white space": {"action_type": 'a/b"c\\d', "request_payload": {"tab": "\t"}},
    "at the depth limit": {"action_type": "deep", "metadata": nested(32)},
}


def parse_cases() -> list[Any]:
    """Each tricky body, sent alone and as a batch of one."""
    cases = []
    for path, kind in ((ACTIONS, "single"), (BATCH, "batch")):
        for name in TRICKY:
            cases.append(pytest.param(path, name, id=f"{kind}: {name}"))
    return cases


@pytest.mark.parametrize(("path", "name"), parse_cases())
async def test_the_lane_and_the_route_parse_json_alike(
    lane: Lane,
    routes: httpx.AsyncClient,
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    path: str,
    name: str,
) -> None:
    content = TRICKY[name] if path == ACTIONS else b"[" + TRICKY[name] + b"]"
    headers = {**tenant.headers, **JSON}
    served = await lane.client.post(path, content=content, headers=headers)
    assert served.status_code == 201, served.text
    assert lane.downstream.calls == []
    by_route = await routes.post(path, content=content, headers=headers)
    assert by_route.status_code == 201, by_route.text

    def first_id(response: httpx.Response) -> str:
        body = response.json()
        return str(body["ids"][0] if path == BATCH else body["id"])

    mine = await stored(client, tenant, first_id(served))
    theirs = await stored(client, tenant, first_id(by_route))
    assert compared(mine) == compared(theirs)
    for field_name, value in EXPECTED.get(name, {}).items():
        assert mine[field_name] == value, field_name


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        (ACTIONS, {"action_type": "x", "metadata": nested(33)}, ["body", "metadata"]),
        (ACTIONS, {"action_type": "x", "response_data": [nested(32)]}, ["body", "response_data"]),
        (BATCH, [ONE, {"action_type": "x", "metadata": nested(33)}], ["body", 1, "metadata"]),
    ],
    ids=["single", "single, in a list", "batch item"],
)
async def test_one_level_too_deep_is_the_routes_422(
    lane: Lane,
    routes: httpx.AsyncClient,
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    settings: Settings,
    path: str,
    body: Any,
    loc: list[str | int],
) -> None:
    limit = settings.max_json_depth
    assert limit == 32  # the bodies above are built for the default
    response = await lane.client.post(path, json=body, headers=tenant.headers)
    assert response.status_code == 422
    assert lane.downstream.calls == []  # the lane validates, the service refuses: same answer
    assert response.json()["detail"] == [
        {"type": "json_too_deep", "loc": loc, "msg": f"JSON nested deeper than {limit} levels"}
    ]
    alone = await routes.post(path, json=body, headers=tenant.headers)
    assert (alone.status_code, alone.json()) == (422, response.json())
    assert (await client.get(ACTIONS, headers=tenant.headers)).json() == []


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("x-api-key", "unknown"), ("x-api-key", "write")),
        (("x-api-key", "read only"), ("x-api-key", "write")),
        (("content-type", "text/plain"), ("content-type", "application/json")),
    ],
    ids=["unknown key, then a write key", "read-only key, then a write key", "text, then JSON"],
)
async def test_a_repeated_header_gets_the_routes_answer(
    client: httpx.AsyncClient,
    routes: httpx.AsyncClient,
    keys: Any,
    first: tuple[str, str],
    second: tuple[str, str],
) -> None:
    def value(name: str, given: str) -> str:
        return str(keys[given]) if name == "x-api-key" else given

    headers = [(name, value(name, given)) for name, given in (first, second)]
    if first[0] == "content-type":
        headers.append(("x-api-key", keys["write"]))
    else:
        headers.append(("content-type", "application/json"))
    alone = await routes.post(ACTIONS, content=as_bytes(ONE), headers=headers)
    response = await client.post(ACTIONS, content=as_bytes(ONE), headers=headers)
    assert alone.status_code != 201  # the routes refuse it
    assert response.status_code == alone.status_code


@pytest.fixture
async def dead_database_apps() -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """The app and its routes alone, configured for a database nobody listens on."""
    settings = Settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nothing",
        admin_token=ADMIN_TOKEN,
        environment="test",
        log_level="error",
        db_pool_timeout=2,
    )
    app = create_app(settings)
    async with asgi_client(app) as with_lane, asgi_client(without_the_lane(app)) as alone:
        yield with_lane, alone


@pytest.mark.parametrize("path", [ACTIONS, BATCH])
async def test_an_unreachable_database_is_503_on_both_paths(
    dead_database_apps: tuple[httpx.AsyncClient, httpx.AsyncClient], path: str
) -> None:
    with_lane, alone = dead_database_apps
    body = ONE if path == ACTIONS else [ONE]
    headers = {"X-API-Key": "alk_0123456789ab_secret"}
    by_route = await alone.post(path, json=body, headers=headers)
    assert by_route.status_code == 503
    assert by_route.headers["retry-after"]
    response = await with_lane.post(path, json=body, headers=headers)
    assert response.status_code == 503
    assert response.headers.get("retry-after") == by_route.headers["retry-after"]
