"""GenAI figures in statistics: calls and token sums per model and provider, read from the
GenAI rollups that every write keeps exact (inserts, changes of running actions, purges), equal
to what the rows give over whole and ragged ranges, whichever way the calls arrived."""

import random
from collections import defaultdict
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.actions import rollup_rebuild, rollups
from app.actions.models import action_genai_rollups
from app.core.auth import Actor
from app.core.db import utcnow
from tests.actions.conftest import ACTIONS, BATCH, STATS, move_in_time
from tests.conftest import TenantHandle

MODELS = [("gpt-4o", "openai"), ("claude-sonnet", "anthropic"), ("llama-3", None)]


def call(rng: random.Random, i: int) -> dict[str, Any]:
    """An action body: a model call most of the time, with odd token values now and then."""
    model, provider = rng.choice(MODELS)
    metadata: dict[str, Any] = {
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": rng.randrange(1, 5000),
        "gen_ai.usage.output_tokens": rng.randrange(0, 900),
    }
    if i % 7 == 0:
        metadata["gen_ai.usage.output_tokens"] = rng.choice(["12", 1.5, True, -3, None])
    if i % 11 == 0:  # named by the response's model only
        metadata["gen_ai.response.model"] = metadata.pop("gen_ai.request.model")
    if i % 5 == 0:  # not a model call
        metadata = {"rows": i}
    return {
        "action_type": "chat" if "rows" not in metadata else "job",
        "provider_name": provider,
        "status": rng.choice(["success", "success", "failure"]),
        "metadata": metadata,
    }


def expected(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The `genai` figures of these bodies, computed here from the documented rule."""
    totals = [0, 0, 0]
    models: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    providers: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for item in items:
        meta = item["metadata"]
        model = meta.get("gen_ai.request.model") or meta.get("gen_ai.response.model")
        if not model:
            continue
        counts = [1] + [
            value if type(value) is int and value >= 0 else 0
            for value in (meta.get("gen_ai.usage.input_tokens"),
                          meta.get("gen_ai.usage.output_tokens"))
        ]  # fmt: skip
        targets = [totals, models[model]]
        if item["provider_name"]:
            targets.append(providers[item["provider_name"]])
        for target in targets:
            for k in range(3):
                target[k] += counts[k]
    if not totals[0]:
        return None

    def usage(counts: list[int]) -> dict[str, int]:
        return dict(zip(("calls", "input_tokens", "output_tokens"), counts, strict=True))

    def ranked(found: dict[str, list[int]]) -> dict[str, Any]:
        order = sorted(found.items(), key=lambda item: (-item[1][0], item[0]))
        return {name: usage(counts) for name, counts in order}

    return {**usage(totals), "by_model": ranked(models), "by_provider": ranked(providers)}


async def genai_rows(engine: AsyncEngine, tenant_id: str) -> set[tuple[Any, ...]]:
    """The tenant's GenAI rollups that count something."""
    c = action_genai_rollups.c
    query = select(action_genai_rollups).where(c.tenant_id == UUID(tenant_id), c.calls != 0)
    async with engine.connect() as connection:
        return {tuple(row) for row in (await connection.execute(query)).all()}


async def assert_match_rebuild(engine: AsyncEngine, tenant_id: str) -> None:
    kept = await genai_rows(engine, tenant_id)
    async with AsyncSession(engine) as session, session.begin():
        await rollup_rebuild.rebuild(session, UUID(tenant_id))
    assert kept == await genai_rows(engine, tenant_id)
    assert {row[1] for row in kept} == set(rollups.PERIODS)


async def genai(client: httpx.AsyncClient, tenant: TenantHandle, **params: Any) -> Any:
    response = await client.get(STATS, params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()["genai"]


async def test_spans_count_as_model_calls(
    client: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    assert await genai(client, tenant) is None  # no call yet: no figures
    span = {
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "spanId": "00f067aa0ba902b7",
        "name": "chat gpt-4o",
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000",
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "812"}},
            {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 64}},
        ],
    }
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    for _ in range(2):  # sent again: a replay, counted once
        response = await client.post("/v1/traces", json=body, headers=tenant.headers)
        assert response.status_code == 200, response.text
    usage = {"calls": 1, "input_tokens": 812, "output_tokens": 64}
    assert await genai(client, tenant) == {
        **usage, "by_model": {"gpt-4o": usage}, "by_provider": {"openai": usage}
    }  # fmt: skip
    assert await genai(client, other_tenant) is None  # the other tenant's figures: its own


async def test_rollups_stay_exact_through_changes_and_purges(
    app: Any, client: httpx.AsyncClient, tenant: TenantHandle, engine: AsyncEngine
) -> None:
    rng = random.Random(23)
    items = [call(rng, i) for i in range(60)]
    response = await client.post(BATCH, json=items, headers=tenant.headers)
    assert response.status_code == 201, response.text
    assert await genai(client, tenant) == expected(items)

    # a running call completed later, with its output tokens merged into its metadata
    running = {**call(rng, 1), "status": "in_progress"}
    running["metadata"]["gen_ai.usage.output_tokens"] = 0
    created = await client.post(ACTIONS, json=running, headers=tenant.headers)
    change = {"status": "success", "metadata": {"gen_ai.usage.output_tokens": 321}}
    done = await client.patch(f"{ACTIONS}/{created.json()['id']}", json=change,
                              headers=tenant.headers)  # fmt: skip
    assert done.status_code == 200, done.text
    running["metadata"]["gen_ai.usage.output_tokens"] = 321
    assert await genai(client, tenant) == expected([*items, running])
    await assert_match_rebuild(engine, tenant.id)

    ids = response.json()["ids"]
    now = utcnow()
    await move_in_time(engine, {ids[i]: now - timedelta(days=2, minutes=i) for i in range(20)})
    purged = await app.state.pruner.prune(
        UUID(tenant.id), "actions", now - timedelta(days=1), Actor("test")
    )
    assert purged.deleted == 20
    assert await genai(client, tenant) == expected([*items[20:], running])
    await assert_match_rebuild(engine, tenant.id)


@pytest.mark.parametrize(("start", "end"), [(None, None), (0, 600), (17, 433), (75, 95)])
async def test_ragged_ranges_equal_the_rows(
    client: httpx.AsyncClient, tenant: TenantHandle, engine: AsyncEngine,
    start: int | None, end: int | None,
) -> None:  # fmt: skip
    rng = random.Random(31)
    items = [call(rng, i) for i in range(80)]
    response = await client.post(BATCH, json=items, headers=tenant.headers)
    assert response.status_code == 201, response.text
    base = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=4)
    times = [base + timedelta(minutes=rng.randrange(0, 600), seconds=rng.random()) for _ in items]
    await move_in_time(engine, dict(zip(response.json()["ids"], times, strict=True)))
    since = base + timedelta(minutes=start) if start is not None else None
    until = base + timedelta(minutes=end) if end is not None else None
    chosen = [
        item
        for item, moment in zip(items, times, strict=True)
        if (since is None or moment >= since) and (until is None or moment < until)
    ]
    params = {
        **({"since": since.isoformat()} if since else {}),
        **({"until": until.isoformat()} if until else {}),
    }
    assert await genai(client, tenant, **params) == expected(chosen)
    by_provider = await genai(client, tenant, provider_name=["openai"], **params)
    assert by_provider == expected([i for i in chosen if i["provider_name"] == "openai"])
