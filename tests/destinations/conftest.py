"""Real receivers for the destination tests: an HTTP server that can be stopped and started
again on its port, Debian's rsyslog with a private TCP input, and an S3 server (moto)."""

import asyncio
import contextlib
import gzip
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.conftest import TenantHandle
from tests.live import free_port

MOTO = Path(shutil.which("moto_server") or Path(__file__).parents[2] / ".venv/bin/moto_server")
RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """Records every request; answers `status` (or the next of `script`)."""

    port: int = field(default_factory=free_port)
    requests: list[Request] = field(default_factory=list)
    status: int = 200
    script: list[int] = field(default_factory=list)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    attempts: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, status)
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status = self.script.pop(0) if self.script else self.status
        self.attempts.append((time.monotonic(), status))
        if 200 <= status < 300:
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            self.requests.append(Request(scope["path"], headers, body))
        await send({"type": "http.response.start", "status": status, "headers": self.headers})
        await send({"type": "http.response.body", "body": b'{"text":"Success","code":0}'})

    async def start(self) -> None:
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, lifespan="off", log_level="error"
        )
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            self.server.force_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, 10)
            self.server = self.task = None

    def webhook_records(self) -> list[dict[str, Any]]:
        return [record for r in self.requests for record in json.loads(r.body)]


@pytest.fixture
async def http_receiver() -> AsyncIterator[HttpReceiver]:
    receiver = HttpReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


class Rsyslog:
    """rsyslogd in the foreground with a private config: TCP input, every message's id and
    text written to a file."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rsyslog-"))
        self.port = free_port()
        self.out = self.dir / "messages.log"
        conf = self.dir / "rsyslog.conf"
        conf.write_text(
            f'global(workDirectory="{self.dir}" maxMessageSize="256k")\n'
            'module(load="imtcp")\n'
            f'input(type="imtcp" port="{self.port}" address="127.0.0.1" ruleset="out")\n'
            'template(name="line" type="string" '
            'string="%app-name% %msgid% %msg%\\n")\n'
            'ruleset(name="out") {\n'
            f'  action(type="omfile" file="{self.out}" template="line")\n'
            "}\n"
        )
        self.process = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(conf), "-i", str(self.dir / "pid")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                import socket

                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            time.sleep(0.05)
        raise RuntimeError("rsyslogd did not start")

    def lines(self) -> list[str]:
        return self.out.read_text().splitlines() if self.out.exists() else []

    def records(self) -> list[tuple[str, str, dict[str, Any]]]:
        found = []
        for line in self.lines():
            app, msgid, message = line.split(" ", 2)
            found.append((app, msgid, json.loads(message)))
        return found

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def rsyslog() -> Iterator[Rsyslog]:
    server = Rsyslog()
    yield server
    server.stop()


class S3Server:
    """moto's S3 in server mode on a free port, read back with boto3."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [str(MOTO), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                httpx.get(self.url + "/moto-api/", timeout=1)
                return
            time.sleep(0.1)
        raise RuntimeError("moto_server did not start")

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> dict[str, bytes]:
        s3 = self.client()
        listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}

    def records(self, bucket: str) -> list[dict[str, Any]]:
        """Every record of the bucket's objects (NDJSON or Parquet), ordered by stream id."""
        import io

        import pyarrow.parquet as pq

        found: list[dict[str, Any]] = []
        for key, body in self.objects(bucket).items():
            if key.endswith(".parquet"):
                table = pq.read_table(io.BytesIO(body))
                found += [json.loads(text) for text in table.column("record").to_pylist()]
            else:
                found += [json.loads(line) for line in gzip.decompress(body).splitlines()]
        return sorted(found, key=lambda r: r["stream_id"])

    def config(self, bucket: str, **extra: Any) -> dict[str, Any]:
        return {
            "bucket": bucket,
            "endpoint_url": self.url,
            "region": "us-east-1",
            "access_key_id": "testing",
            "secret_access_key": "testing",
            **extra,
        }

    def stop(self) -> None:
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        if self.process.poll() is None:
            self.process.kill()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(autouse=True, scope="session")
def _short_polls(app: Any) -> Iterator[None]:
    """The test application's sender reads every 0.2 s here (default 1 s): shorter tests."""
    settings = app.state.settings
    settings.destination_poll_seconds = 0.2
    yield
    settings.destination_poll_seconds = 1.0


@pytest.fixture(autouse=True)
async def _pause_destinations_after(engine: Any) -> AsyncIterator[None]:
    """After each test its destinations stop, so that the test application's sender does not keep
    retrying receivers that are gone while later tests run."""
    yield
    from sqlalchemy import update

    from app.destinations.models import Destination

    async with engine.begin() as connection:
        await connection.execute(update(Destination).values(state="paused"))


async def create_destination(
    client: httpx.AsyncClient, tenant: TenantHandle, **body: Any
) -> dict[str, Any]:
    body.setdefault("name", body.get("type", "destination"))
    response = await client.post("/api/v1/destinations", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def wait_until(condition: Any, within: float = 30.0, every: float = 0.1) -> Any:
    """Poll `condition` (sync or async) until it returns a truthy value; that value."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)


async def write_actions(
    client: httpx.AsyncClient, tenant: TenantHandle, count: int, **fields: Any
) -> None:
    items = [
        {"action_type": "crm_create", "status": "success", "action_name": f"a{i}", **fields}
        for i in range(count)
    ]
    for start in range(0, count, 100):
        response = await client.post(
            "/api/v1/logs/actions/batch", json=items[start : start + 100], headers=tenant.headers
        )
        assert response.status_code == 201, response.text


async def write_audits(client: httpx.AsyncClient, tenant: TenantHandle, count: int) -> None:
    for i in range(count):
        response = await client.post(
            "/api/v1/logs/audits",
            json={
                "user_id": "u1",
                "action": "update",
                "resource_type": "case",
                "resource_id": str(i),
                "before": {"n": i},
                "after": {"n": i + 1},
            },
            headers=tenant.headers,
        )
        assert response.status_code == 201, response.text


def in_order_complete(ids: list[int], expected: list[int]) -> bool:
    """Every expected stream id arrived, first arrivals in order (repeats allowed)."""
    seen: list[int] = []
    known: set[int] = set()
    for stream_id in ids:
        if stream_id not in known:
            known.add(stream_id)
            seen.append(stream_id)
    return seen == expected
