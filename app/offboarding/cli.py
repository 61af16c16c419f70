"""`actionlog tenant delete TENANT`: offboard a tenant (its keys revoked, all its data deleted,
the tenant removed), as `DELETE /api/v1/admin/tenants/{id}` does."""

import argparse
import asyncio
from typing import Any

from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, utcnow
from app.offboarding.service import Offboarded, offboard_tenant
from app.tenants.cli import tenants_of


def cmd_tenant_delete(args: argparse.Namespace, settings: Settings) -> None:
    async def run() -> Offboarded:
        (tenant,) = await tenants_of(settings, args.tenant)
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


def add_commands(tenant: Any) -> None:
    """Register `delete` in the `tenant` group (app/tenants/cli.py)."""
    offboard = tenant.add_parser(
        "delete", help="offboard a tenant: revoke its keys, delete all its data (id or slug)"
    )
    offboard.add_argument("tenant")
    offboard.set_defaults(handler=cmd_tenant_delete)
