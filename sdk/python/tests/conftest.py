"""Fixtures: a real `actionlog serve` process per database, and real peers for failure cases.

The client is tested against the service itself, never a mock: for each backend a fresh
database (a temporary SQLite file; a new PostgreSQL database on TEST_DATABASE_URL's server,
dropped at the end) and a service process on a free 127.0.0.1 port with an ADMIN_TOKEN, so
tests create their own tenants. `Service.stop()` / `start()` take the service down and bring
it back on the same port and database. When PostgreSQL cannot be reached its half is
skipped, except under CI=true, where that is a failure.

`Peer` is a tiny real HTTP server in front of the service that misbehaves on purpose (503
or 429 with Retry-After, or forwarding a request and then dropping the connection before the
answer), to test backoff and exactly-once delivery against the real service behind it.
"""

import asyncio
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from actionlog_client import ActionLogger

ADMIN_TOKEN = "sdk-test-admin-token-0123456789"
MakeLogger = Callable[..., ActionLogger]
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _actionlog_command() -> list[str]:
    script = Path(sys.executable).with_name("actionlog")
    if script.exists():
        return [str(script)]
    found = shutil.which("actionlog")
    if found is None:
        pytest.fail("the `actionlog` service is not installed in this environment")
    return [found]


class Service:
    """`actionlog serve` in a subprocess, on one database and one port for the session."""

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "service.log"

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "warning",
            "WORKERS": "1",
            "RETRY_AFTER_SECONDS": "1",
        }
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [*_actionlog_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the service exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"the service did not become ready: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Admin-Token": ADMIN_TOKEN}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)


@dataclass
class Tenant:
    id: str
    key: str
    url: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=self.headers, params=params, timeout=10)

    def actions(self, **params: Any) -> list[dict[str, Any]]:
        response = self.get("/api/v1/logs/actions", limit=1000, **params)
        assert response.status_code == 200, response.text
        return list(response.json())

    def action(self, action_id: str) -> dict[str, Any]:
        response = self.get(f"/api/v1/logs/actions/{action_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())


def make_tenant(service: Service, name: str = "SDK tenant") -> Tenant:
    response = service.admin("POST", "/api/v1/admin/tenants", json={"name": name})
    assert response.status_code == 201, response.text
    body = response.json()
    return Tenant(body["id"], body["api_key"], service.url)


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _pg(sql: str) -> None:
    import asyncpg  # the service's driver; installed with it

    async def run() -> None:
        server = os.environ.get("TEST_DATABASE_URL", DEFAULT_PG_URL)
        connection = await asyncpg.connect(_pg_dsn(server), timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


def _pg_database() -> str:
    name = f"actionlog_sdk_{uuid.uuid4().hex[:12]}"
    try:
        _pg(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        message = f"PostgreSQL unreachable: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = os.environ.get("TEST_DATABASE_URL", DEFAULT_PG_URL)
    base, _, _ = server.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    workdir = tmp_path_factory.mktemp(f"service-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'actionlog.db'}"
    else:
        url = _pg_database()
    svc = Service(url, workdir)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()
        if request.param == "postgresql":
            name = url.rpartition("/")[2]
            _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def running(service: Service) -> Iterator[Service]:
    """The service, brought back up after the test if the test stopped it."""
    if service.process is None:
        service.start()
    yield service
    if service.process is None:
        service.start()


@pytest.fixture
def tenant(running: Service) -> Tenant:
    return make_tenant(running)


@dataclass
class Errors:
    """An `on_error` that keeps what it is given."""

    seen: list[tuple[Exception, list[dict[str, Any]]]] = field(default_factory=list)

    def __call__(self, exc: Exception, events: list[dict[str, Any]]) -> None:
        self.seen.append((exc, events))

    def of(self, kind: type[Exception]) -> list[tuple[Exception, list[dict[str, Any]]]]:
        return [(e, ev) for e, ev in self.seen if isinstance(e, kind)]


@pytest.fixture
def make_logger() -> Iterator[MakeLogger]:
    """ActionLogger(url, key, ...) with a short flush interval, closed after the test."""
    made: list[ActionLogger] = []

    def make(url: str, key: str, **kwargs: Any) -> ActionLogger:
        kwargs.setdefault("flush_interval", 0.05)
        logger = ActionLogger(url, key, **kwargs)
        made.append(logger)
        return logger

    yield make
    for logger in made:
        logger.close(timeout=2)


# A misbehaving peer in front of the real service


class Peer:
    """A real HTTP server that follows a script, then forwards to the service.

    Each request takes the next step of `script`: "forward", "drop" (forward, then close the
    connection without answering: the request was stored but the client cannot know),
    "503" / "429" (answer that status with `Retry-After: retry_after`, forward nothing),
    "500" (a bare 500, forward nothing).
    GETs are always forwarded; when the script is used up, everything is. `arrivals` records
    (time, path, step). `down()` / `up()` refuse connections and accept them again on the same
    port: an outage without the seconds a restart of the service takes.
    """

    def __init__(self, upstream: str, script: list[str], retry_after: str = "1") -> None:
        self.upstream = upstream
        self.script = list(script)
        self.retry_after = retry_after
        self.arrivals: list[tuple[float, str, str]] = []
        self.lock = threading.Lock()
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with peer.lock:
                    scripted = peer.script and self.command != "GET"
                    step = peer.script.pop(0) if scripted else "forward"
                    peer.arrivals.append((time.monotonic(), self.path, step))
                if step in ("503", "429", "500"):
                    payload = b'{"detail": "try again later"}'
                    self.send_response(int(step))
                    if step != "500":
                        self.send_header("Retry-After", peer.retry_after)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "connection")
                }
                upstream = httpx.request(
                    self.command,
                    f"{peer.upstream}{self.path}",
                    content=body,
                    headers=headers,
                    timeout=30,
                )
                if step == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(upstream.status_code)
                for name, value in upstream.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            do_GET = do_POST = do_PATCH = _handle

        self.handler = Handler
        self.port = 0
        self.server: http.server.ThreadingHTTPServer | None = None
        self.up()
        self.url = f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        """Listen (again, on the same port): the service is reachable."""
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Stop listening: connections are refused, as when the service is down."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def steps(self, path_part: str) -> list[tuple[float, str]]:
        return [(t, step) for t, path, step in self.arrivals if path_part in path]

    def close(self) -> None:
        self.down()


@pytest.fixture
def peer(running: Service) -> Iterator["MakePeer"]:
    made: list[Peer] = []

    def make(script: list[str], retry_after: str = "1") -> Peer:
        p = Peer(running.url, script, retry_after)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


MakePeer = Callable[..., Peer]
