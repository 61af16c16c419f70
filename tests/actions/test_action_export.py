"""Export: CSV and NDJSON downloads of every matching action, streamed in chunks."""

import csv
import io
import json
import re
from typing import Any

import httpx
import pytest

from app.actions import export
from app.core.redact import REDACTED
from tests.actions.conftest import ACTIONS, BATCH, Record
from tests.conftest import TenantHandle

URL = f"{ACTIONS}/export"
COLUMNS = [
    "id",
    "tenant_id",
    "action_type",
    "action_name",
    "provider_name",
    "service",
    "source",
    "user_id",
    "session_id",
    "correlation_id",
    "parent_id",
    "status",
    "request_payload",
    "response_data",
    "metadata",
    "steps",
    "error_message",
    "error_type",
    "execution_time_ms",
    "started_at",
    "completed_at",
    "ip_address",
    "user_agent",
    "created_at",
    "updated_at",
    "schema_errors",
    "schema_version",
]


@pytest.fixture
async def actions(record: Record, tenant: TenantHandle) -> list[dict[str, Any]]:
    """Three actions, newest last, one of them with every JSON field and a tricky message."""
    return [
        await record(tenant, action_type="a", execution_time_ms=1),
        await record(
            tenant,
            action_type="b",
            status="failed",
            error_message='line one,\n"quoted" line two',
            request_payload={"password": "p", "list": [1, {"x": None}]},
            response_data=[1, "two"],
            metadata={"région": "eu"},
            steps=[{"step": "s", "status": "ok", "timestamp": "2030-01-01T00:00:00Z"}],
        ),
        await record(tenant, action_type="a", status="in_progress"),
    ]


async def download(
    client: httpx.AsyncClient, tenant: TenantHandle, **params: Any
) -> httpx.Response:
    response = await client.get(URL, params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response


async def test_ndjson_lines_are_the_records(
    client: httpx.AsyncClient, tenant: TenantHandle, actions: list[dict[str, Any]]
) -> None:
    response = await download(client, tenant, format="ndjson")
    assert response.headers["content-type"] == "application/x-ndjson"
    assert re.fullmatch(
        r'attachment; filename="action-logs-\d{8}T\d{6}Z\.ndjson"',
        response.headers["content-disposition"],
    )
    lines = response.text.splitlines()
    assert [json.loads(line) for line in lines] == actions[::-1]


async def test_csv_has_a_header_and_json_fields_as_json_text(
    client: httpx.AsyncClient, tenant: TenantHandle, actions: list[dict[str, Any]]
) -> None:
    response = await download(client, tenant)
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].endswith('.csv"')
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == COLUMNS
    assert set(COLUMNS) == set(actions[0])
    rows = [dict(zip(COLUMNS, line, strict=True)) for line in table[1:]]
    assert [row["id"] for row in rows] == [a["id"] for a in actions[::-1]]
    failed = rows[1]
    assert failed["error_message"] == 'line one,\n"quoted" line two'
    assert json.loads(failed["request_payload"]) == {"password": REDACTED, "list": [1, {"x": None}]}
    assert json.loads(failed["response_data"]) == [1, "two"]
    assert json.loads(failed["metadata"]) == {"région": "eu"}
    assert json.loads(failed["steps"])[0]["step"] == "s"
    assert failed["status"] == "failure"
    assert failed["created_at"] == actions[1]["created_at"]
    running = rows[0]
    assert running["completed_at"] == ""
    assert running["execution_time_ms"] == ""
    assert json.loads(running["response_data"]) is None
    assert rows[2]["execution_time_ms"] == "1"


async def test_list_filters_and_order_apply(
    client: httpx.AsyncClient, tenant: TenantHandle, actions: list[dict[str, Any]]
) -> None:
    response = await download(client, tenant, format="ndjson", action_type="a", order="asc")
    exported = [json.loads(line)["id"] for line in response.text.splitlines()]
    assert exported == [actions[0]["id"], actions[2]["id"]]
    none = await download(client, tenant, status="timeout")
    assert none.text.splitlines() == [",".join(COLUMNS)]


async def test_every_row_once_across_chunks_and_beyond_the_list_limit(
    client: httpx.AsyncClient, tenant: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [{"action_type": "bulk", "user_id": str(i)} for i in range(1000)]
    assert (await client.post(BATCH, json=items, headers=tenant.headers)).status_code == 201
    items = [{"action_type": "bulk", "user_id": str(i)} for i in range(1000, 1050)]
    assert (await client.post(BATCH, json=items, headers=tenant.headers)).status_code == 201
    everything = await download(client, tenant, format="ndjson")
    exported = [json.loads(line) for line in everything.text.splitlines()]
    assert len({row["id"] for row in exported}) == len(exported) == 1050
    keys = [(row["created_at"], row["id"]) for row in exported]
    assert keys == sorted(keys, reverse=True)

    monkeypatch.setattr(export, "CHUNK_SIZE", 7)
    chunked = await download(client, tenant, format="ndjson", user_id="1")
    assert len(chunked.text.splitlines()) == 1
    small = await download(client, tenant, order="asc")
    lines = list(csv.reader(io.StringIO(small.text)))[1:]
    assert [line[0] for line in lines] == [row["id"] for row in exported[::-1]]
