"""GET /api/v1/logs/ws: authentication by first message (or header), events, resume, errors."""

import json
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from tests.conftest import TenantHandle, create_key

ACTIONS = "/api/v1/logs/actions"


def ws_url(live_url: str, query: str = "") -> str:
    return live_url.replace("http://", "ws://") + "/api/v1/logs/ws" + query


async def receive(ws: ClientConnection, within: float = 10.0) -> Any:
    import asyncio

    return json.loads(await asyncio.wait_for(ws.recv(), within))


async def events(ws: ClientConnection, count: int) -> list[Any]:
    found = []
    while len(found) < count:
        message = await receive(ws)
        if message["type"] == "event":
            found.append(message)
    return found


async def refused(url: str, first: Any | None, **connect: Any) -> tuple[Any, int]:
    async with websockets.connect(url, **connect) as ws:
        if first is not None:
            await ws.send(json.dumps(first))
        message = await receive(ws)
        try:
            await ws.recv()
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None
            return message, closed.rcvd.code
    raise AssertionError("not closed")


async def test_events_after_first_message_auth_and_resume(
    live_url: str, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    async with websockets.connect(ws_url(live_url, "?kinds=action")) as ws:
        await ws.send(json.dumps({"type": "auth", "api_key": tenant.key}))
        ready = await receive(ws)
        assert ready["type"] == "ready"
        posted = await client.post(ACTIONS, json={"action_type": "ws_one"}, headers=tenant.headers)
        (event,) = await events(ws, 1)
    assert event["event"] == "action"
    listed = (await client.get(ACTIONS, headers=tenant.headers)).json()[0]
    assert event["data"] == listed
    assert listed["id"] == posted.json()["id"]
    missed = []
    for n in range(5):
        response = await client.post(ACTIONS, json={"action_type": f"m{n}"}, headers=tenant.headers)
        missed.append(response.json()["id"])
    async with websockets.connect(
        ws_url(live_url), additional_headers={"X-API-Key": tenant.key}
    ) as ws:
        ready = await receive(ws)
        assert ready["type"] == "ready"
    async with websockets.connect(ws_url(live_url, "?kinds=action")) as ws:
        await ws.send(
            json.dumps({"type": "auth", "api_key": tenant.key, "last_event_id": event["id"]})
        )
        assert (await receive(ws))["last_event_id"] == event["id"]
        assert [e["data"]["id"] for e in await events(ws, 5)] == missed


async def test_refusals_are_messages_then_close_codes(
    live_url: str, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    message, code = await refused(ws_url(live_url), {"type": "auth", "api_key": "alk_nope"})
    assert (message["status"], code) == (401, 4401)
    write_only = await create_key(client, tenant, ["write"])
    message, code = await refused(ws_url(live_url), {"type": "auth", "api_key": write_only})
    assert (message["status"], code) == (403, 4403)
    message, code = await refused(ws_url(live_url, "?kinds=bogus"), None)
    assert (message["status"], code) == (422, 4422)
    assert "kinds" in json.dumps(message["detail"])
    message, code = await refused(ws_url(live_url), {"hello": 1})
    assert (message["status"], code) == (401, 4401)
    message, code = await refused(
        ws_url(live_url), {"type": "auth", "api_key": tenant.key, "last_event_id": "x"}
    )
    assert (message["status"], code) == (422, 4422)


async def test_another_tenants_events_never_arrive(
    live_url: str, client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    async with websockets.connect(ws_url(live_url)) as theirs:
        await theirs.send(json.dumps({"type": "auth", "api_key": other_tenant.key}))
        assert (await receive(theirs))["type"] == "ready"
        await client.post(ACTIONS, json={"action_type": "private"}, headers=tenant.headers)

        try:
            message = await receive(theirs, within=0.5)
        except TimeoutError:
            message = None
        assert message is None or message["type"] == "keepalive"
