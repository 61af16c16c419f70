"""The `actionlog` command: serve, migrate, manage tenants and keys, verify audit chains,
load demo data.

Errors print one line on stderr and exit with status 1.
"""

import argparse
import asyncio
import functools
import json
import os
import secrets
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions import rollups
from app.alerts import cli as alerts_cli
from app.audits.schemas import ChainVerification
from app.audits.service import verify_chain
from app.audits.signing import SignerSource
from app.core import citus, migrations
from app.core.auth import ALL_SCOPES, Actor
from app.core.config import Settings, get_settings
from app.core.db import create_engine, create_sessionmaker, utcnow
from app.core.errors import ServiceError
from app.core.inputs import QueryTime
from app.core.metrics import MULTIPROC_ENV
from app.core.redact import PayloadRules
from app.models import distribution_layout
from app.offboarding.service import Offboarded, offboard_tenant
from app.proofs import cli as proofs_cli
from app.retention.archive import KINDS, Kind
from app.retention.locks import RetentionLocks
from app.retention.read import cat_archive
from app.retention.service import Pruned, Pruner, RetentionConfig, archives
from app.retention.verify_archive import verify_archives
from app.tenants.models import Tenant
from app.tenants.repository import find_api_key_by_id
from app.tenants.schemas import (
    ApiKeyCreate,
    ApiKeyRead,
    RetentionPolicy,
    TenantCreate,
    TenantRead,
    TenantUpdate,
)
from app.tenants.service import TenantService

CLI_ACTOR = Actor(id="cli")
SHUTDOWN_GRACE_SECONDS = 5
T = TypeVar("T")


class CliError(Exception):
    """A failure reported to the user as one line."""


async def _in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    engine = create_engine(settings, as_owner=True)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


async def _migrate(settings: Settings) -> None:
    engine = create_engine(settings, as_owner=True)
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
    if settings.console_secret is None and workers > 1:
        # Console sessions are signed; every worker must check them with the same secret.
        os.environ["CONSOLE_SECRET"] = secrets.token_urlsafe(32)
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
        # Live streams never end by themselves: on SIGTERM, give open requests a few seconds,
        # then close what is left (stream clients reconnect and resume from their last id).
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        # A worker's first answer waits for its imports; on a busy host they take longer than
        # uvicorn's default 5 s, and it would kill and respawn workers in a loop.
        timeout_worker_healthcheck=60,
        server_header=False,
    )


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    asyncio.run(_migrate(settings))
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


def cmd_tenant_create(args: argparse.Namespace, settings: Settings) -> None:
    body = TenantCreate(
        name=args.name,
        slug=args.slug,
        retention_days=args.retention_days,
        audit_retention_days=args.audit_retention_days,
    )

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
    pruned = f", pruned through {result.pruned_through}" if result.pruned_through else ""
    if result.valid:
        return (
            f"{name}: valid, {result.checked} rows{pruned}, "
            f"head {result.head_sequence} {result.head_hash}"
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
        engine = create_engine(settings, as_owner=True)
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
    kinds: tuple[Kind, ...] = KINDS if args.kind == "all" else (args.kind,)

    async def run() -> list[Pruned]:
        engine = create_engine(settings, as_owner=True)
        sessionmaker = create_sessionmaker(engine)
        rules = PayloadRules.from_settings(settings)
        secret = settings.audit_signing_key
        signer = SignerSource(sessionmaker, secret.get_secret_value() if secret else None)
        pruner = Pruner(
            sessionmaker,
            rules,
            signer,
            RetentionLocks(engine),
            RetentionConfig.from_settings(settings),
        )
        try:
            done: list[Pruned] = []
            for tenant in await _tenants_of(settings, args.tenant):
                if before is None:
                    done += await pruner.prune_by_policy(
                        tenant.id,
                        tenant.retention_days,
                        tenant.audit_retention_days,
                        CLI_ACTOR,
                        kinds,
                    )
                    continue
                for kind in kinds:
                    done.append(await pruner.prune(tenant.id, kind, before, CLI_ACTOR))
            return done
        finally:
            await engine.dispose()

    for pruned in asyncio.run(run()):
        through = (
            f", chain checkpoint at sequence {pruned.through_sequence}"
            if pruned.through_sequence
            else ""
        )
        print(
            f"{pruned.tenant_id}: deleted {pruned.deleted} {pruned.kind} before "
            f"{pruned.before} ({pruned.files} archive files{through})"
        )


def _days(value: str) -> int | None:
    """A number of days, or `none`/`forever` to keep forever."""
    if value.lower() in {"none", "forever", "null"}:
        return None
    try:
        return int(value)
    except ValueError:
        raise CliError(f"'{value}' is not a number of days (or 'none')") from None


def cmd_tenant_retention(args: argparse.Namespace, settings: Settings) -> None:
    changes: dict[str, int | None] = {}
    if args.retention_days is not None:
        changes["retention_days"] = _days(args.retention_days)
    if args.audit_retention_days is not None:
        changes["audit_retention_days"] = _days(args.audit_retention_days)
    body = TenantUpdate.model_validate(changes)

    async def work(session: AsyncSession) -> RetentionPolicy:
        service = _tenant_service(session, settings)
        tenant = await service.get_by_id_or_slug(args.tenant)
        if changes:
            tenant = await service.update(tenant.id, body)
        return RetentionPolicy.model_validate(tenant)

    policy = asyncio.run(_in_session(settings, work))
    _print(policy.model_dump(), args.json)


def cmd_archive_list(args: argparse.Namespace, settings: Settings) -> None:
    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        tenant_id = None
        if args.tenant:
            tenant_id = (await _tenant_service(session, settings).get_by_id_or_slug(args.tenant)).id
        rows = await archives(session, tenant_id, args.kind, None, 0, 1_000_000)
        return [row.model_dump(mode="json") for row in rows]

    for row in asyncio.run(_in_session(settings, work)):
        if args.json:
            print(json.dumps(row))
        else:
            sequences = (
                f"  sequences {row['first_sequence']}..{row['last_sequence']}"
                if row["first_sequence"] is not None
                else ""
            )
            print(
                f"{row['path']}  {row['row_count']} rows  {row['first_at']} .. {row['last_at']}"
                f"{sequences}  sha256 {row['sha256']}"
            )


def cmd_archive_cat(args: argparse.Namespace, settings: Settings) -> None:
    asyncio.run(cat_archive(settings, args.file, stored=args.stored, out=sys.stdout.buffer))


def cmd_verify_archive(args: argparse.Namespace, settings: Settings) -> None:
    public_key = args.public_key
    if public_key and Path(public_key).is_file():
        public_key = Path(public_key).read_text().strip()
    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CliError(f"not found: {', '.join(missing)}")
    reports = verify_archives(paths, public_key)
    if not reports:
        raise CliError("no archive files found")
    for report in reports:
        state = "ok" if report.valid else "INVALID"
        details = "; ".join(report.problems or report.notes)
        print(
            f"{report.path}: {state}, {report.kind}, {report.rows} rows"
            + (f": {details}" if details else "")
        )
    bad = [r for r in reports if not r.valid]
    if bad:
        raise CliError(f"{len(bad)} of {len(reports)} archive file(s) do not verify")


async def _rebuild(session: AsyncSession, tenant_id: UUID) -> None:
    await rollups.rebuild(session, tenant_id)


def cmd_rollups_rebuild(args: argparse.Namespace, settings: Settings) -> None:
    async def run() -> int:
        tenants = await _tenants_of(settings, args.tenant)
        for tenant in tenants:
            await _in_session(settings, functools.partial(_rebuild, tenant_id=tenant.id))
        return len(tenants)

    print(f"rebuilt the rollups of {asyncio.run(run())} tenant(s)")


_MOMENT = TypeAdapter(QueryTime)


def _moment(value: str, what: str) -> datetime:
    """A time as the API's query parameters take it (ISO 8601, a date, Unix seconds, -7d …)."""
    try:
        return _MOMENT.validate_python(value)
    except ValidationError as exc:
        raise CliError(f"{what}: {exc.errors()[0]['msg']}") from None


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    from app.demo import load_demo

    asyncio.run(_migrate(settings))
    result = asyncio.run(
        _in_session(settings, lambda session: load_demo(session, settings, args.rows))
    )
    if settings.admin_token is not None:
        result["admin_token"] = settings.admin_token.get_secret_value()
    _print(result, args.json)
    if not args.json:
        print(_next_steps(result, f"http://{settings.host}:{settings.port}"))


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
    commands.add_parser(
        "distribute", help="shard the migrated schema over a Citus cluster (idempotent)"
    ).set_defaults(handler=cmd_distribute)

    tenant = commands.add_parser("tenant", help="manage tenants").add_subparsers(
        dest="tenant_command", required=True
    )
    create = tenant.add_parser("create", help="create a tenant and its first key")
    create.add_argument("name")
    create.add_argument("--slug")
    create.add_argument("--retention-days", type=int)
    create.add_argument("--audit-retention-days", type=int)
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=cmd_tenant_create)
    tenant.add_parser("list", help="list tenants").set_defaults(handler=cmd_tenant_list)
    retention = tenant.add_parser(
        "retention", help="show or set a tenant's retention (days, or 'none' to keep forever)"
    )
    retention.add_argument("tenant", help="tenant id or slug")
    retention.add_argument("--retention-days", help="days to keep actions, or none")
    retention.add_argument("--audit-retention-days", help="days to keep audit rows, or none")
    retention.add_argument("--json", action="store_true")
    retention.set_defaults(handler=cmd_tenant_retention)
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
        "prune", help="archive and delete rows older than each tenant's retention (or --before)"
    )
    prune.add_argument("tenant", nargs="?", help="tenant id or slug (default: every tenant)")
    prune.add_argument(
        "--before", help="ISO 8601 time or date (UTC when no zone); overrides retention"
    )
    prune.add_argument("--kind", choices=["actions", "audits", "all"], default="all")
    prune.set_defaults(handler=cmd_prune)

    archive = commands.add_parser("archive", help="archive files").add_subparsers(
        dest="archive_command", required=True
    )
    archive_list = archive.add_parser("list", help="list archive files whose rows were pruned")
    archive_list.add_argument("tenant", nargs="?", help="tenant id or slug (default: every tenant)")
    archive_list.add_argument("--kind", choices=["actions", "audits"])
    archive_list.add_argument("--json", action="store_true")
    archive_list.set_defaults(handler=cmd_archive_list)
    archive_cat = archive.add_parser(
        "cat", help="print an archive file's records as NDJSON, sealed fields opened"
    )
    archive_cat.add_argument("file", help="a path, or one relative to ARCHIVE_DIR")
    archive_cat.add_argument(
        "--stored", action="store_true", help="the rows as stored (ciphertext, no database)"
    )
    archive_cat.set_defaults(handler=cmd_archive_cat)

    verify_archive = commands.add_parser(
        "verify-archive",
        help="check archive files offline: SHA-256, audit chain, signed checkpoints",
    )
    verify_archive.add_argument("paths", nargs="+", help="archive files or directories")
    verify_archive.add_argument(
        "--public-key", help="the published key (base64, or a file holding it) to trust"
    )
    verify_archive.set_defaults(handler=cmd_verify_archive)

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
