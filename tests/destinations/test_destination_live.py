"""Served end to end: 2,000 records from concurrent writers (actions and audits; two workers
on PostgreSQL) reach every destination type, in order, none missing, across a crash and
restart of the service; another tenant's records reach none of them."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx

from app.streams.events import events_after
from tests.conftest import TenantHandle, create_tenant
from tests.destinations.conftest import (
    HttpReceiver,
    Rsyslog,
    S3Server,
    in_order_complete,
    wait_until,
)
from tests.live import start_service

ACTION_BATCHES = 32  # of 50: 1,600 actions
AUDIT_BATCHES = 20  # of 20: 400 audit events


def _children(pid: int) -> list[int]:
    command = ["ps", "-o", "pid=", "--ppid", str(pid)]
    listed = subprocess.run(command, capture_output=True, text=True)
    return [int(child) for child in listed.stdout.split()]


async def _crash(service: Any) -> None:
    """Kill the service and its worker processes at once, as a host failure would."""
    workers = _children(service.process.pid)
    await service.stop(kill=True)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def _writer(http: httpx.AsyncClient, tenant: TenantHandle, batches: range) -> None:
    for n in batches:
        if n % 3 == 0 and n // 3 < AUDIT_BATCHES:
            events = [
                {"user_id": f"u{n}", "action": "update", "resource_type": "case",
                 "resource_id": f"{n}-{i}", "before": {"v": i}, "after": {"v": i + 1}}
                for i in range(20)
            ]  # fmt: skip
            response = await http.post(
                "/api/v1/logs/audits/batch", json={"events": events}, headers=tenant.headers
            )
            assert response.status_code == 201, response.text
        if n < ACTION_BATCHES:
            items = [
                {"action_type": "job_execution", "status": "success", "action_name": f"{n}-{i}"}
                for i in range(50)
            ]
            response = await http.post(
                "/api/v1/logs/actions/batch", json=items, headers=tenant.headers
            )
            assert response.status_code == 201, response.text


async def _write(url: str, tenant: TenantHandle, other: TenantHandle, batches: range) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        shares = [
            range(start, batches.stop, 4) for start in range(batches.start, batches.start + 4)
        ]
        await asyncio.gather(
            *(_writer(http, tenant, share) for share in shares),
            _writer(http, other, range(batches.start, batches.start + 1)),
        )


async def test_records_reach_every_destination_across_a_restart(
    backend: str,
    database_url: str,
    client: httpx.AsyncClient,
    app: Any,
    engine: Any,
    http_receiver: HttpReceiver,
    rsyslog: Rsyslog,
    s3_server: S3Server,
) -> None:
    await app.state.destination_worker.close()  # only the served processes deliver here
    tenant = await create_tenant(client, "Streams out")
    other = await create_tenant(client, "Another")
    bucket = s3_server.bucket(f"live-{tenant.id[-12:]}")
    env = {
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "DESTINATION_POLL_SECONDS": "0.2",
        "DESTINATION_LEASE_SECONDS": "4",
        "ALERTS_ENABLED": "false",
    }
    workers = 2 if backend == "postgresql" else 1
    service = await start_service(database_url, workers=workers, **env)
    try:
        configs = {
            "http": {"url": http_receiver.url + "/hook"},
            "splunk_hec": {"url": http_receiver.url, "token": "t"},
            "datadog": {"url": http_receiver.url, "api_key": "k"},
            "syslog": {"host": "127.0.0.1", "port": rsyslog.port},
            "s3": s3_server.config(bucket),
        }
        starts: dict[str, int] = {}
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
            for kind, config in configs.items():
                response = await http.post(
                    "/api/v1/destinations",
                    json={"name": kind, "type": kind, "config": config},
                    headers=tenant.headers,
                )
                assert response.status_code == 201, response.text
                starts[kind] = response.json()["delivered_through"]
        half = max(ACTION_BATCHES, AUDIT_BATCHES * 3) // 2
        await _write(service.url, tenant, other, range(0, half))
        await _crash(service)  # in the middle, senders holding their leases
        service = await start_service(database_url, workers=workers, **env)
        await _write(service.url, tenant, other, range(half, half * 2))

        async with engine.connect() as connection:
            events = await events_after(connection, UUID(tenant.id), 0, 1_000_000)
        seqs = [event.seq for event in events]
        assert len(seqs) >= 2000

        def expected(kind: str) -> list[int]:
            return [s for s in seqs if s > starts[kind]]

        def at(path: str, unpack: Callable[[bytes], list[Any]]) -> list[dict[str, Any]]:
            return [r for q in http_receiver.requests if q.path == path for r in unpack(q.body)]

        arrivals: dict[str, Callable[[], list[dict[str, Any]]]] = {
            "http": lambda: at("/hook", json.loads),
            "splunk_hec": lambda: [
                e["event"]
                for e in at(
                    "/services/collector/event",
                    lambda body: [json.loads(line) for line in body.splitlines()],
                )
            ],
            "datadog": lambda: [json.loads(e["message"]) for e in at("/api/v2/logs", json.loads)],
            "syslog": lambda: [r for _, _, r in rsyslog.records()],
            "s3": lambda: s3_server.records(bucket),
        }
        for kind, arrived in arrivals.items():

            def complete(kind: str = kind, arrived: Any = arrived) -> bool:
                mine = [r for r in arrived() if r.get("tenant_id") == tenant.id]
                return in_order_complete([r["stream_id"] for r in mine], expected(kind))

            await wait_until(complete, within=60, every=0.5)
            strays = [r for r in arrived() if r.get("tenant_id") == other.id]
            assert strays == [], kind
    finally:
        await service.stop()
        app.state.destination_worker.start()
