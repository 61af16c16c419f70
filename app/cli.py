"""The `actionlog` command: serve, migrate, distribute, load demo data; each domain adds its
own commands (tenants and keys, offboarding, retention and archives, proofs, alerts).

Errors print one line on stderr and exit with status 1.
"""

import argparse
import asyncio
import functools
import os
import secrets
import shutil
import sys
import tempfile
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions import rollup_rebuild
from app.alerts import cli as alerts_cli
from app.core import citus
from app.core.cli import CliError, in_session, migrate, print_fields
from app.core.config import Settings, get_settings
from app.core.db import create_engine
from app.core.errors import ServiceError
from app.core.metrics import MULTIPROC_ENV
from app.models import distribution_layout
from app.offboarding import cli as offboarding_cli
from app.proofs import cli as proofs_cli
from app.retention import cli as retention_cli
from app.tenants import cli as tenants_cli

SHUTDOWN_GRACE_SECONDS = 5


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    asyncio.run(migrate(settings))
    serve_http(settings, args.host, args.port, args.workers)


def serve_http(
    settings: Settings, host: str | None = None, port: int | None = None, workers: int | None = None
) -> None:
    """Serve the (migrated) database with uvicorn until stopped."""
    workers = workers or settings.workers
    if settings.console_secret is None and workers > 1:
        # Console sessions are signed; every worker must check them with the same secret.
        os.environ["CONSOLE_SECRET"] = secrets.token_urlsafe(32)
    metrics_dir = None
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # every worker writes its metrics here, and /metrics adds them up (app/core/metrics.py);
        # a directory made here is removed when serving ends
        metrics_dir = os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="actionlog-metrics-")
    try:
        _run_uvicorn(settings, host, port, workers)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _run_uvicorn(settings: Settings, host: str | None, port: int | None, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level,
        loop="uvloop",
        http="httptools",
        access_log=False,
        # Live streams never end by themselves: on SIGTERM, give open requests a few seconds,
        # then close what is left (stream clients reconnect and resume from their last id).
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        # A worker's first answer waits for its imports; on a busy host they take longer than
        # uvicorn's default 5 s, and it would kill and respawn workers in a loop.
        timeout_worker_healthcheck=60,
        server_header=False,
    )


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    asyncio.run(migrate(settings))
    print("database is at the latest schema")


def cmd_distribute(args: argparse.Namespace, settings: Settings) -> None:
    async def run() -> list[str]:
        if settings.is_sqlite:
            raise CliError("distribute needs a PostgreSQL database with Citus; this is SQLite")
        engine = create_engine(settings, as_owner=True)
        try:
            return await citus.distribute(engine, distribution_layout(), settings.database_role)
        except citus.DistributionError as exc:
            raise CliError(str(exc)) from None
        finally:
            await engine.dispose()

    for step in asyncio.run(run()):
        print(step)
    print("the database is distributed; serve it with `actionlog serve`")


async def _rebuild(session: AsyncSession, tenant_id: UUID) -> None:
    await rollup_rebuild.rebuild(session, tenant_id)


def cmd_rollups_rebuild(args: argparse.Namespace, settings: Settings) -> None:
    async def run() -> int:
        tenants = await tenants_cli.tenants_of(settings, args.tenant)
        for tenant in tenants:
            await in_session(settings, functools.partial(_rebuild, tenant_id=tenant.id))
        return len(tenants)

    print(f"rebuilt the rollups of {asyncio.run(run())} tenant(s)")


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    from app.demo import load_demo

    asyncio.run(migrate(settings))
    result = asyncio.run(
        in_session(settings, lambda session: load_demo(session, settings, args.rows))
    )
    if settings.admin_token is not None:
        result["admin_token"] = settings.admin_token.get_secret_value()
    print_fields(result, args.json)
    if not args.json:
        print(_next_steps(result, f"http://{settings.host}:{settings.port}"), flush=True)
    if args.serve:
        serve_http(settings)


def _next_steps(result: dict[str, Any], base: str) -> str:
    """What to do once the demo is served: the key, the console, one request."""
    lines = [
        "",
        "Next, in another terminal:",
        f"  export KEY={result['api_key']}",
    ]
    if "admin_token" in result:
        lines.append(f"  export ADMIN={result['admin_token']}")
    lines += [
        f'  curl -s "{base}/api/v1/logs/actions?limit=5" -H "X-API-Key: $KEY"',
        f"Console: {base}/ui (sign in with the key)   API docs: {base}/docs",
        "",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actionlog", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="apply migrations, then serve HTTP")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.set_defaults(handler=cmd_serve)

    commands.add_parser("migrate", help="apply migrations").set_defaults(handler=cmd_migrate)
    commands.add_parser(
        "distribute", help="shard the migrated schema over a Citus cluster (idempotent)"
    ).set_defaults(handler=cmd_distribute)

    offboarding_cli.add_commands(tenants_cli.add_commands(commands))
    retention_cli.add_commands(commands)

    rollup = commands.add_parser("rollups", help="statistics rollups").add_subparsers(
        dest="rollups_command", required=True
    )
    rebuild = rollup.add_parser("rebuild", help="recompute rollups from the rows (bulk loads)")
    rebuild.add_argument("tenant", nargs="?", help="tenant id or slug (default: every tenant)")
    rebuild.set_defaults(handler=cmd_rollups_rebuild)

    demo = commands.add_parser("demo", help="create the demo tenant with sample data")
    demo.add_argument("--rows", type=int, default=300)
    demo.add_argument("--json", action="store_true")
    demo.add_argument("--serve", action="store_true", help="then serve it, as `serve` does")
    demo.set_defaults(handler=cmd_demo)

    alerts_cli.add_commands(commands)
    proofs_cli.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args, get_settings())
    except (CliError, ServiceError) as exc:
        detail = exc.detail if isinstance(exc, ServiceError) else str(exc)
        print(f"error: {detail}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "input"
        print(f"error: {field}: {first['msg']}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, OperationalError, InterfaceError) as exc:
        print(f"error: database unreachable: {exc.__class__.__name__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
