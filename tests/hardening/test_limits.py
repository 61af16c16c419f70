"""Rate limits per key and failed-authentication throttling per address, counted in the process
and, with REDIS_URL, in Redis (shared by every worker: two apps stand for two workers)."""

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from app.core.config import Settings
from app.core.limits import failed_auth_limit
from tests.conftest import ADMIN_TOKEN, TenantHandle, create_key
from tests.hardening.conftest import asgi_client, serving

ACTIONS = "/api/v1/logs/actions"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def need_redis() -> None:
    """Skip without a Redis on 6379 (a failure under CI=true, like PostgreSQL's tests)."""
    if not _redis_reachable():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Redis unreachable at 127.0.0.1:6379")
        pytest.skip("Redis unreachable at 127.0.0.1:6379")


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str | None:
    if request.param == "memory":
        return None
    need_redis()
    return REDIS_URL


@contextlib.asynccontextmanager
async def limited(settings: Settings, **limits: object) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(settings.model_copy(update=limits)) as app, asgi_client(app) as client:
        yield client


async def test_rate_limit_headers_and_429(
    settings: Settings, client: httpx.AsyncClient, tenant: TenantHandle, store: str | None
) -> None:
    key = {"X-API-Key": await create_key(client, tenant, ["read", "write"])}
    async with limited(settings, rate_limit_per_minute=3, redis_url=store) as api:
        answers = [await api.get(ACTIONS, headers=key) for _ in range(3)]
        refused = await api.get(ACTIONS, headers=key)
        recorded = await api.post(ACTIONS, json={"action_type": "x"}, headers=key)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].headers["ratelimit-policy"] == '"key";q=3;w=60'
    assert [a.headers["ratelimit"].split(";")[1] for a in answers] == ["r=2", "r=1", "r=0"]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["detail"] == "Rate limit of 3 requests per minute exceeded"
    assert recorded.status_code == 429  # the ingest lane counts the same key
    assert "x-request-id" in refused.headers


async def test_each_key_has_its_own_count(
    settings: Settings, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    first = {"X-API-Key": await create_key(client, tenant, ["read"])}
    second = {"X-API-Key": await create_key(client, tenant, ["read"])}
    async with limited(settings, rate_limit_per_minute=1) as api:
        assert (await api.get(ACTIONS, headers=first)).status_code == 200
        assert (await api.get(ACTIONS, headers=first)).status_code == 429
        assert (await api.get(ACTIONS, headers=second)).status_code == 200


async def test_the_recording_routes_can_have_their_own_limit(
    settings: Settings, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    key = {"X-API-Key": await create_key(client, tenant, ["read", "write"])}
    async with limited(settings, rate_limit_per_minute=100, rate_limit_write_per_minute=2) as api:
        writes = [await api.post(ACTIONS, json={"action_type": "x"}, headers=key) for _ in range(3)]
        read = await api.get(ACTIONS, headers=key)
    assert [w.status_code for w in writes] == [201, 201, 429]
    assert writes[0].headers["ratelimit-policy"] == '"write";q=2;w=60'
    assert read.status_code == 200


async def test_limits_are_off_by_default(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    response = await client.get(ACTIONS, headers=tenant.headers)
    assert "ratelimit" not in response.headers
    assert Settings().rate_limit_per_minute == 0


async def test_redis_shares_the_count_between_workers(
    settings: Settings, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    need_redis()
    key = {"X-API-Key": await create_key(client, tenant, ["read"])}
    async with (
        limited(settings, rate_limit_per_minute=2, redis_url=REDIS_URL) as worker_1,
        limited(settings, rate_limit_per_minute=2, redis_url=REDIS_URL) as worker_2,
    ):
        assert (await worker_1.get(ACTIONS, headers=key)).status_code == 200
        assert (await worker_2.get(ACTIONS, headers=key)).status_code == 200
        assert (await worker_1.get(ACTIONS, headers=key)).status_code == 429
        assert (await worker_2.get(ACTIONS, headers=key)).status_code == 429


async def test_an_unreachable_redis_lets_requests_through(
    settings: Settings, tenant: TenantHandle
) -> None:
    async with limited(settings, rate_limit_per_minute=1, redis_url="redis://127.0.0.1:1/0") as api:
        answers = [await api.get(ACTIONS, headers=tenant.headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]


def _client_at(client: httpx.AsyncClient, address: str) -> httpx.AsyncClient:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    other = httpx.ASGITransport(app=transport.app, raise_app_exceptions=False, client=(address, 1))
    return httpx.AsyncClient(transport=other, base_url="http://testserver")


async def test_failed_authentication_is_throttled_per_address(
    settings: Settings, tenant: TenantHandle, store: str | None
) -> None:
    guesser = f"10.{uuid.uuid4().int % 250}.0.1"
    async with (
        limited(settings, failed_auth_per_minute=3, redis_url=store) as api,
        _client_at(api, guesser) as bad,
        _client_at(api, "10.255.0.2") as good,
    ):
        wrong = {"X-API-Key": "alk_0123456789ab_" + "w" * 32}
        guesses = [(await bad.get(ACTIONS, headers=wrong)).status_code for _ in range(3)]
        blocked = await bad.get(ACTIONS, headers=tenant.headers)
        ingest = await bad.post(ACTIONS, json={"action_type": "x"}, headers=tenant.headers)
        elsewhere = await good.get(ACTIONS, headers=tenant.headers)
    assert guesses == [401, 401, 401]
    assert blocked.status_code == 429  # even with the right key, for the rest of the window
    assert ingest.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    assert blocked.headers["ratelimit-policy"] == '"auth";q=3;w=60'
    assert elsewhere.status_code == 200


async def test_wrong_admin_tokens_are_throttled_too(settings: Settings) -> None:
    guesser = f"10.{uuid.uuid4().int % 250}.1.1"
    async with limited(settings, failed_auth_per_minute=2) as api, _client_at(api, guesser) as bad:
        wrong = {"X-Admin-Token": "guess-" + "x" * 20}
        guesses = [
            (await bad.get("/api/v1/admin/tenants", headers=wrong)).status_code for _ in range(2)
        ]
        right = await bad.get("/api/v1/admin/tenants", headers={"X-Admin-Token": ADMIN_TOKEN})
    assert guesses == [401, 401]
    assert right.status_code == 429


async def test_a_missing_key_is_not_a_guess(settings: Settings) -> None:
    async with limited(settings, failed_auth_per_minute=1) as api:
        statuses = [(await api.get(ACTIONS)).status_code for _ in range(3)]
    assert statuses == [401, 401, 401]


async def _guesses_until_refused(workers: list[httpx.AsyncClient], address: str) -> list[int]:
    """Wrong keys from one address, in turn to each worker, until every worker refuses."""
    wrong = {"X-API-Key": "alk_0123456789ab_" + "w" * 32}
    statuses: list[int] = []
    clients = [_client_at(worker, address) for worker in workers]
    refused: set[int] = set()
    while len(refused) < len(clients) and len(statuses) < 40:
        for index, bad in enumerate(clients):
            status = (await bad.get(ACTIONS, headers=wrong)).status_code
            statuses.append(status)
            if status == 429:
                refused.add(index)
    for bad in clients:
        await bad.aclose()
    return statuses


async def test_without_redis_each_worker_allows_its_share_of_failed_authentications(
    settings: Settings,
) -> None:
    guesser = f"10.{uuid.uuid4().int % 250}.2.1"
    limits = {"failed_auth_per_minute": 6, "workers": 3}
    async with (
        limited(settings, **limits) as worker_1,
        limited(settings, **limits) as worker_2,
        limited(settings, **limits) as worker_3,
    ):
        statuses = await _guesses_until_refused([worker_1, worker_2, worker_3], guesser)
    assert statuses.count(401) == 6  # the documented limit, over all workers together
    assert statuses[-3:] == [429, 429, 429]


async def test_with_redis_the_workers_share_the_failed_authentication_limit(
    settings: Settings,
) -> None:
    need_redis()
    guesser = f"10.{uuid.uuid4().int % 250}.3.1"
    limits = {"failed_auth_per_minute": 6, "workers": 3, "redis_url": REDIS_URL}
    async with (
        limited(settings, **limits) as worker_1,
        limited(settings, **limits) as worker_2,
        limited(settings, **limits) as worker_3,
    ):
        statuses = await _guesses_until_refused([worker_1, worker_2, worker_3], guesser)
    assert statuses.count(401) == 6
    assert statuses[-3:] == [429, 429, 429]


def test_a_limit_below_the_number_of_workers_is_one_failure_each() -> None:
    assert failed_auth_limit(Settings(failed_auth_per_minute=30, workers=4)) == 7
    assert failed_auth_limit(Settings(failed_auth_per_minute=2, workers=4)) == 1
    assert failed_auth_limit(Settings(failed_auth_per_minute=0, workers=4)) == 0
    assert (
        failed_auth_limit(Settings(failed_auth_per_minute=30, workers=4, redis_url=REDIS_URL)) == 30
    )
