"""`actionlog tenant …` and `actionlog key …`: tenants, their retention and their API keys.

actionlog tenant create NAME [--slug S] [--retention-days N] [--audit-retention-days N] [--json]
actionlog tenant list
actionlog tenant retention TENANT [--retention-days N|none] [--audit-retention-days N|none]
actionlog key create TENANT [--scopes read,write,…] [--name N] [--expires-at T] [--json]
actionlog key list TENANT
actionlog key revoke KEY_ID

A TENANT is its id or its slug. Other domains' commands find tenants with `tenants_of`.
"""

import argparse
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import ALL_SCOPES
from app.core.cli import (
    CLI_ACTOR,
    CliError,
    days,
    in_session,
    parse_uuid,
    print_fields,
    run_in_session,
)
from app.core.config import Settings
from app.core.redact import PayloadRules
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


def tenant_service(session: AsyncSession, settings: Settings) -> TenantService:
    """Tenant management as the CLI, with the configured redaction for its audit rows."""
    return TenantService(session, CLI_ACTOR, PayloadRules.from_settings(settings))


async def all_tenants(service: TenantService) -> list[Tenant]:
    tenants: list[Tenant] = []
    while page := await service.list(len(tenants), 1000):
        tenants.extend(page)
    return tenants


async def tenants_of(settings: Settings, ref: str | None) -> list[Tenant]:
    """The tenant named by id or slug, or every tenant when `ref` is None."""

    async def work(session: AsyncSession) -> list[Tenant]:
        service = tenant_service(session, settings)
        return [await service.get_by_id_or_slug(ref)] if ref else await all_tenants(service)

    return await in_session(settings, work)


def cmd_tenant_create(args: argparse.Namespace, settings: Settings) -> None:
    body = TenantCreate(
        name=args.name,
        slug=args.slug,
        retention_days=args.retention_days,
        audit_retention_days=args.audit_retention_days,
    )

    async def work(session: AsyncSession) -> dict[str, Any]:
        tenant, issued = await tenant_service(session, settings).create(body)
        data = TenantRead.model_validate(tenant).model_dump(mode="json")
        return {**data, "api_key_id": str(issued.key.id), "api_key": issued.plaintext}

    print_fields(run_in_session(settings, work), args.json)


def cmd_tenant_list(args: argparse.Namespace, settings: Settings) -> None:
    async def work(session: AsyncSession) -> list[TenantRead]:
        tenants = await tenant_service(session, settings).list(0, 10_000)
        return [TenantRead.model_validate(t) for t in tenants]

    for tenant in run_in_session(settings, work):
        print(f"{tenant.id}  {tenant.slug}  {tenant.name}")


def cmd_tenant_retention(args: argparse.Namespace, settings: Settings) -> None:
    changes: dict[str, int | None] = {}
    if args.retention_days is not None:
        changes["retention_days"] = days(args.retention_days)
    if args.audit_retention_days is not None:
        changes["audit_retention_days"] = days(args.audit_retention_days)
    body = TenantUpdate.model_validate(changes)

    async def work(session: AsyncSession) -> RetentionPolicy:
        service = tenant_service(session, settings)
        tenant = await service.get_by_id_or_slug(args.tenant)
        if changes:
            tenant = await service.update(tenant.id, body)
        return RetentionPolicy.model_validate(tenant)

    print_fields(run_in_session(settings, work).model_dump(), args.json)


def cmd_key_create(args: argparse.Namespace, settings: Settings) -> None:
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    expires_at = datetime.fromisoformat(args.expires_at) if args.expires_at else None
    body = ApiKeyCreate.model_validate(
        {"name": args.name, "scopes": scopes, "expires_at": expires_at}
    )

    async def work(session: AsyncSession) -> dict[str, Any]:
        service = tenant_service(session, settings)
        tenant = await service.get_by_id_or_slug(args.tenant)
        issued = await service.issue_key(tenant.id, body)
        data = ApiKeyRead.model_validate(issued.key).model_dump(mode="json")
        return {**data, "key": issued.plaintext}

    print_fields(run_in_session(settings, work), args.json)


def cmd_key_list(args: argparse.Namespace, settings: Settings) -> None:
    async def work(session: AsyncSession) -> list[ApiKeyRead]:
        service = tenant_service(session, settings)
        tenant = await service.get_by_id_or_slug(args.tenant)
        return [ApiKeyRead.model_validate(k) for k in await service.list_keys(tenant.id)]

    for key in run_in_session(settings, work):
        state = "revoked" if key.revoked_at else "active"
        print(f"{key.id}  {key.prefix}  {','.join(key.scopes)}  {state}  {key.name}")


def cmd_key_revoke(args: argparse.Namespace, settings: Settings) -> None:
    key_id = parse_uuid(args.key_id, "key id")

    async def work(session: AsyncSession) -> ApiKeyRead:
        key = await find_api_key_by_id(session, key_id)
        if key is None:
            raise CliError(f"API key {key_id} not found")
        revoked = await tenant_service(session, settings).revoke_key(key.tenant_id, key_id)
        return ApiKeyRead.model_validate(revoked)

    key = run_in_session(settings, work)
    print(f"revoked {key.id} ({key.prefix})")


def add_commands(commands: Any) -> Any:
    """Register `tenant` and `key`; the `tenant` group is returned for other domains' verbs."""
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
    return tenant
