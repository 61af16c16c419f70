"""`actionlog prune`, `actionlog archive …` and `actionlog verify-archive`: retention by hand.

actionlog prune [TENANT] [--before TIME] [--kind actions|audits|all]
    archive, then delete, rows older than each tenant's retention (or than --before)
actionlog archive list [TENANT] [--kind actions|audits] [--json]
actionlog archive cat FILE [--stored]
    an archive file's records as NDJSON, sealed fields opened ([ERASED] once erased)
actionlog verify-archive PATH... [--public-key KEY]
    check archive files offline (no database): SHA-256, audit chain, signed checkpoints
"""

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audits.signing import SignerSource
from app.core.cli import CLI_ACTOR, CliError, moment, run_in_session
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.redact import PayloadRules
from app.retention.archive import KINDS, Kind
from app.retention.locks import RetentionLocks
from app.retention.read import cat_archive
from app.retention.service import Pruned, Pruner, RetentionConfig, archives
from app.retention.verify_archive import verify_archives
from app.tenants.cli import tenant_service, tenants_of


def cmd_prune(args: argparse.Namespace, settings: Settings) -> None:
    before = moment(args.before, "--before") if args.before else None
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
            for tenant in await tenants_of(settings, args.tenant):
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


def cmd_archive_list(args: argparse.Namespace, settings: Settings) -> None:
    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        tenant_id = None
        if args.tenant:
            tenant_id = (await tenant_service(session, settings).get_by_id_or_slug(args.tenant)).id
        rows = await archives(session, tenant_id, args.kind, None, 0, 1_000_000)
        return [row.model_dump(mode="json") for row in rows]

    for row in run_in_session(settings, work):
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


def add_commands(commands: Any) -> None:
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
