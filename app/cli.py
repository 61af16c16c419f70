"""The `actionlog` command: serve, migrate, manage tenants and keys, verify audit chains,
load demo data.

Errors print one line on stderr and exit with status 1.
"""

import argparse
import asyncio
import functools
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions import rollups
from app.alerts import cli as alerts_cli
from app.audits.schemas import ChainVerification
from app.audits.service import verify_chain
from app.core import migrations
from app.core.auth import ALL_SCOPES, Actor
from app.core.config import Settings, get_settings
from app.core.db import create_engine, create_sessionmaker, utcnow
from app.core.errors import ServiceError
from app.core.inputs import UtcDatetime
from app.core.metrics import MULTIPROC_ENV
from app.core.redact import PayloadRules
from app.offboarding.service import Offboarded, offboard_tenant
from app.retention.service import Purged, purge_tenant, retention_cutoff
from app.tenants.models import Tenant
from app.tenants.repository import find_api_key_by_id
from app.tenants.schemas import ApiKeyCreate, ApiKeyRead, TenantCreate, TenantRead
from app.tenants.service import TenantService

CLI_ACTOR = Actor(id="cli")
T = TypeVar("T")


class CliError(Exception):
    """A failure reported to the user as one line."""


async def _in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


async def _migrate(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


def _tenant_service(session: AsyncSession, settings: Settings) -> TenantService:
    """Tenant management as the CLI, with the configured redaction for its audit rows."""
    return TenantService(session, CLI_ACTOR, PayloadRules.from_settings(settings))


def _print(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, default=str))
    else:
        for field, value in data.items():
            print(f"{field}: {value}")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    asyncio.run(_migrate(settings))
    workers = args.workers or settings.workers
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # every worker writes its metrics here, and /metrics adds them up (app/core/metrics.py)
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="actionlog-metrics-")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=workers,
        log_level=settings.log_level,
        loop="uvloop",
        http="httptools",
        access_log=False,
        server_header=False,
    )


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    asyncio.run(_migrate(settings))
    print("database is at the latest schema")


def cmd_tenant_create(args: argparse.Namespace, settings: Settings) -> None:
    body = TenantCreate(name=args.name, slug=args.slug, retention_days=args.retention_days)

    async def work(session: AsyncSession) -> dict[str, Any]:
        tenant, issued = await _tenant_service(session, settings).create(body)
        data = TenantRead.model_validate(tenant).model_dump(mode="json")
        return {**data, "api_key_id": str(issued.key.id), "api_key": issued.plaintext}

    _print(asyncio.run(_in_session(settings, work)), args.json)


def cmd_tenant_list(args: argparse.Namespace, settings: Settings) -> None:
    async def work(session: AsyncSession) -> list[TenantRead]:
        tenants = await _tenant_service(session, settings).list(0, 10_000)
        return [TenantRead.model_validate(t) for t in tenants]

    for tenant in asyncio.run(_in_session(settings, work)):
        print(f"{tenant.id}  {tenant.slug}  {tenant.name}")


def cmd_key_create(args: argparse.Namespace, settings: Settings) -> None:
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    expires_at = datetime.fromisoformat(args.expires_at) if args.expires_at else None
    body = ApiKeyCreate.model_validate(
        {"name": args.name, "scopes": scopes, "expires_at": expires_at}
    )

    async def work(session: AsyncSession) -> dict[str, Any]:
        service = _tenant_service(session, settings)
        tenant = await service.get_by_id_or_slug(args.tenant)
        issued = await service.issue_key(tenant.id, body)
        data = ApiKeyRead.model_validate(issued.key).model_dump(mode="json")
        return {**data, "key": issued.plaintext}

    _print(asyncio.run(_in_session(settings, work)), args.json)


def cmd_key_list(args: argparse.Namespace, settings: Settings) -> None:
    async def work(session: AsyncSession) -> list[ApiKeyRead]:
        service = _tenant_service(session, settings)
        tenant = await service.get_by_id_or_slug(args.tenant)
        return [ApiKeyRead.model_validate(k) for k in await service.list_keys(tenant.id)]

    for key in asyncio.run(_in_session(settings, work)):
        state = "revoked" if key.revoked_at else "active"
        print(f"{key.id}  {key.prefix}  {','.join(key.scopes)}  {state}  {key.name}")


def cmd_key_revoke(args: argparse.Namespace, settings: Settings) -> None:
    key_id = _uuid(args.key_id, "key id")

    async def work(session: AsyncSession) -> ApiKeyRead:
        key = await find_api_key_by_id(session, key_id)
        if key is None:
            raise CliError(f"API key {key_id} not found")
        revoked = await _tenant_service(session, settings).revoke_key(key.tenant_id, key_id)
        return ApiKeyRead.model_validate(revoked)

    key = asyncio.run(_in_session(settings, work))
    print(f"revoked {key.id} ({key.prefix})")


async def _all_tenants(service: TenantService) -> list[Tenant]:
    tenants: list[Tenant] = []
    while page := await service.list(len(tenants), 1000):
        tenants.extend(page)
    return tenants


def _verification_line(tenant: Tenant, result: ChainVerification) -> str:
    name = f"{tenant.slug} ({tenant.id})"
    if result.valid:
        return (
            f"{name}: valid, {result.checked} rows, head {result.head_sequence} {result.head_hash}"
        )
    row = f" (row {result.first_invalid_id})" if result.first_invalid_id else ""
    return f"{name}: INVALID at sequence {result.first_invalid_sequence}{row}: {result.reason}"


def cmd_verify(args: argparse.Namespace, settings: Settings) -> None:
    async def work(session: AsyncSession) -> list[tuple[Tenant, ChainVerification]]:
        service = _tenant_service(session, settings)
        if args.tenant:
            tenants = [await service.get_by_id_or_slug(args.tenant)]
        else:
            tenants = await _all_tenants(service)
        return [(tenant, await verify_chain(session, tenant.id)) for tenant in tenants]

    results = asyncio.run(_in_session(settings, work))
    for tenant, result in results:
        if args.json:
            data = {"tenant_id": str(tenant.id), "slug": tenant.slug, **result.model_dump()}
            print(json.dumps(data, default=str))
        else:
            print(_verification_line(tenant, result))
    broken = [tenant.slug for tenant, result in results if not result.valid]
    if broken:
        raise CliError(f"audit chain broken for {len(broken)} tenant(s): {', '.join(broken)}")


async def _tenants_of(settings: Settings, ref: str | None) -> list[Tenant]:
    async def work(session: AsyncSession) -> list[Tenant]:
        service = _tenant_service(session, settings)
        return [await service.get_by_id_or_slug(ref)] if ref else await _all_tenants(service)

    return await _in_session(settings, work)


def cmd_tenant_delete(args: argparse.Namespace, settings: Settings) -> None:
    async def run() -> Offboarded:
        (tenant,) = await _tenants_of(settings, args.tenant)
        engine = create_engine(settings)
        try:
            return await offboard_tenant(create_sessionmaker(engine), str(tenant.id), "cli", utcnow)
        finally:
            await engine.dispose()

    done = asyncio.run(run())
    print(
        f"{done.tenant_id}: {done.keys_revoked} keys revoked, {done.actions_deleted} actions "
        f"and {done.audits_deleted} audit rows deleted, tenant removed"
    )


def cmd_prune(args: argparse.Namespace, settings: Settings) -> None:
    before = _moment(args.before, "--before") if args.before else None

    async def run() -> list[Purged]:
        engine = create_engine(settings)
        sessionmaker = create_sessionmaker(engine)
        rules = PayloadRules.from_settings(settings)
        try:
            done = []
            for tenant in await _tenants_of(settings, args.tenant):
                days = tenant.retention_days
                cutoff = before or (retention_cutoff(days) if days else None)
                if cutoff is not None:
                    purged = await purge_tenant(sessionmaker, rules, tenant.id, cutoff, CLI_ACTOR)
                    done.append(purged)
            return done
        finally:
            await engine.dispose()

    for purged in asyncio.run(run()):
        print(f"{purged.tenant_id}: deleted {purged.deleted} actions before {purged.before}")


async def _rebuild(session: AsyncSession, tenant_id: UUID) -> None:
    await rollups.rebuild(session, tenant_id)


def cmd_rollups_rebuild(args: argparse.Namespace, settings: Settings) -> None:
    async def run() -> int:
        tenants = await _tenants_of(settings, args.tenant)
        for tenant in tenants:
            await _in_session(settings, functools.partial(_rebuild, tenant_id=tenant.id))
        return len(tenants)

    print(f"rebuilt the rollups of {asyncio.run(run())} tenant(s)")


_MOMENT = TypeAdapter(UtcDatetime)


def _moment(value: str, what: str) -> datetime:
    """A time as the API's query parameters take it: ISO 8601, a date, UTC when no zone."""
    try:
        return _MOMENT.validate_python(value)
    except ValidationError as exc:
        raise CliError(f"{what}: {exc.errors()[0]['msg']} (e.g. 2030-01-01T00:00:00Z)") from None


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    from app.demo import load_demo

    asyncio.run(_migrate(settings))
    result = asyncio.run(
        _in_session(settings, lambda session: load_demo(session, settings, args.rows))
    )
    if settings.admin_token is not None:
        result["admin_token"] = settings.admin_token.get_secret_value()
    _print(result, args.json)


def _uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise CliError(f"{what} '{value}' is not a UUID") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actionlog", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="apply migrations, then serve HTTP")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.set_defaults(handler=cmd_serve)

    commands.add_parser("migrate", help="apply migrations").set_defaults(handler=cmd_migrate)

    tenant = commands.add_parser("tenant", help="manage tenants").add_subparsers(
        dest="tenant_command", required=True
    )
    create = tenant.add_parser("create", help="create a tenant and its first key")
    create.add_argument("name")
    create.add_argument("--slug")
    create.add_argument("--retention-days", type=int)
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=cmd_tenant_create)
    tenant.add_parser("list", help="list tenants").set_defaults(handler=cmd_tenant_list)
    offboard = tenant.add_parser(
        "delete", help="offboard a tenant: revoke its keys, delete all its data (id or slug)"
    )
    offboard.add_argument("tenant")
    offboard.set_defaults(handler=cmd_tenant_delete)

    key = commands.add_parser("key", help="manage API keys").add_subparsers(
        dest="key_command", required=True
    )
    key_create = key.add_parser("create", help="issue a key for a tenant (id or slug)")
    key_create.add_argument("tenant")
    key_create.add_argument("--scopes", default=",".join(ALL_SCOPES))
    key_create.add_argument("--name", default="cli")
    key_create.add_argument("--expires-at", help="ISO 8601 with a timezone")
    key_create.add_argument("--json", action="store_true")
    key_create.set_defaults(handler=cmd_key_create)
    key_list = key.add_parser("list", help="list a tenant's keys")
    key_list.add_argument("tenant")
    key_list.set_defaults(handler=cmd_key_list)
    key_revoke = key.add_parser("revoke", help="revoke a key")
    key_revoke.add_argument("key_id")
    key_revoke.set_defaults(handler=cmd_key_revoke)

    verify = commands.add_parser(
        "verify", help="recompute audit hash chains; exit 1 when one is broken"
    )
    verify.add_argument("tenant", nargs="?", help="tenant id or slug (default: every tenant)")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=cmd_verify)

    prune = commands.add_parser(
        "prune", help="delete actions older than each tenant's retention_days (or --before)"
    )
    prune.add_argument("tenant", nargs="?", help="tenant id or slug (default: every tenant)")
    prune.add_argument(
        "--before", help="ISO 8601 time or date (UTC when no zone); overrides retention"
    )
    prune.set_defaults(handler=cmd_prune)

    rollup = commands.add_parser("rollups", help="statistics rollups").add_subparsers(
        dest="rollups_command", required=True
    )
    rebuild = rollup.add_parser("rebuild", help="recompute rollups from the rows (bulk loads)")
    rebuild.add_argument("tenant", nargs="?", help="tenant id or slug (default: every tenant)")
    rebuild.set_defaults(handler=cmd_rollups_rebuild)

    demo = commands.add_parser("demo", help="create the demo tenant with sample data")
    demo.add_argument("--rows", type=int, default=300)
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(handler=cmd_demo)

    alerts_cli.add_commands(commands)
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
