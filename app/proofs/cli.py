"""`actionlog verify`, `actionlog verify-proof` and `actionlog tree-head`: the audit trail's
proofs from the command line.

actionlog verify [TENANT] [--json]
    recompute tenants' audit hash chains (every tenant by default); exit 1 when one is broken

actionlog verify-proof --public-key KEY --head HEAD.json --event EVENT.json --proof PROOF.json
    one event is in the log that a signed tree head covers (inclusion, RFC 9162 §2.1.3)
actionlog verify-proof --public-key KEY --older OLD.json --head NEW.json --proof PROOF.json
    a later head extends an earlier one (consistency, RFC 9162 §2.1.4)
actionlog tree-head --tenant TENANT
    sign the tenant's current tree head, keep it (and send it to the tenant's log-stream
    destinations, as the scheduled heads are), and print it as JSON for publishing

`verify-proof` needs no database and trusts only the public key: it reads the service's JSON
answers from files, or one of them from stdin (`-`). It exits 1, saying why, when a check fails.
"""

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audits.schemas import ChainVerification
from app.audits.service import verify_chain
from app.audits.signing import load_signer
from app.core.cli import CliError, run_in_session
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.tenancy import use_tenant
from app.proofs.heads import TreeHead
from app.proofs.service import ProofService
from app.proofs.verify import ProofError, check_event_in_head, check_heads_consistent
from app.tenants.cli import all_tenants, tenant_service
from app.tenants.models import Tenant


def _read_json(path: str, what: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise ValueError(f"{what}: cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what}: {path} is not JSON ({exc.msg})") from None


def _public_key(value: str) -> str:
    """The key as published (base64), given inline, as a file, or as the public-key answer."""
    path = Path(value)
    text = path.read_text().strip() if path.is_file() else value.strip()
    if text.startswith("{"):
        published = json.loads(text)
        return str(published["public_key"])
    return text


def cmd_verify_proof(args: argparse.Namespace, settings: Settings) -> None:
    if [args.head, args.proof, args.event, args.older].count("-") > 1:
        raise ValueError("only one of the files can be read from stdin (-)")
    if (args.event is None) == (args.older is None):
        raise ValueError("give --event (an inclusion proof) or --older (a consistency proof)")
    public_key = _public_key(args.public_key)
    head = _read_json(args.head, "--head")
    proof = _read_json(args.proof, "--proof")
    try:
        if args.event is not None:
            event = _read_json(args.event, "--event")
            check_event_in_head(event, proof, head, public_key)
            print(
                f"ok: event {event.get('id', '?')} is leaf {proof['leaf_index']} of the tree of "
                f"{head['tree_size']} events signed at {head['timestamp']}"
            )
        else:
            older = _read_json(args.older, "--older")
            check_heads_consistent(older, head, proof, public_key)
            print(
                f"ok: the tree of {head['tree_size']} events extends the tree of "
                f"{older['tree_size']} events signed at {older['timestamp']}"
            )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not an answer of the service: missing or wrong field {exc}") from None
    except ProofError as exc:
        raise ValueError(f"does not verify: {exc}") from None


async def _sign_head(settings: Settings, ref: str) -> TreeHead:
    engine = create_engine(settings, as_owner=True)
    setting = settings.audit_signing_key
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            signer = await load_signer(session, setting.get_secret_value() if setting else None)
            tenant_id = (await tenant_service(session, settings).get_by_id_or_slug(ref)).id
            await use_tenant(session, tenant_id)
            service = ProofService(session, tenant_id)
            head = await service.current_head(signer)
            await service.keep(head)
            return head
    finally:
        await engine.dispose()


def cmd_tree_head(args: argparse.Namespace, settings: Settings) -> None:
    print(json.dumps(asyncio.run(_sign_head(settings, args.tenant)).as_json()))


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
        service = tenant_service(session, settings)
        if args.tenant:
            tenants = [await service.get_by_id_or_slug(args.tenant)]
        else:
            tenants = await all_tenants(service)
        return [(tenant, await verify_chain(session, tenant.id)) for tenant in tenants]

    results = run_in_session(settings, work)
    for tenant, result in results:
        if args.json:
            data = {"tenant_id": str(tenant.id), "slug": tenant.slug, **result.model_dump()}
            print(json.dumps(data, default=str))
        else:
            print(_verification_line(tenant, result))
    broken = [tenant.slug for tenant, result in results if not result.valid]
    if broken:
        raise CliError(f"audit chain broken for {len(broken)} tenant(s): {', '.join(broken)}")


def add_commands(commands: Any) -> None:
    chain = commands.add_parser(
        "verify", help="recompute audit hash chains; exit 1 when one is broken"
    )
    chain.add_argument("tenant", nargs="?", help="tenant id or slug (default: every tenant)")
    chain.add_argument("--json", action="store_true")
    chain.set_defaults(handler=cmd_verify)

    verify = commands.add_parser(
        "verify-proof",
        help="check a proof against a signed tree head, offline (exit 1 when it fails)",
    )
    verify.add_argument(
        "--public-key",
        required=True,
        help="the published key: base64, a file holding it, or the saved public-key answer",
    )
    verify.add_argument("--head", required=True, help="the tree head (JSON file, or - for stdin)")
    verify.add_argument("--proof", required=True, help="the proof answer (JSON file, or -)")
    verify.add_argument("--event", help="the audit event answer, for an inclusion proof")
    verify.add_argument("--older", help="the earlier tree head, for a consistency proof")
    verify.set_defaults(handler=cmd_verify_proof)

    head = commands.add_parser(
        "tree-head", help="sign, keep and print a tenant's current audit tree head (JSON)"
    )
    head.add_argument("--tenant", required=True, help="tenant id or slug")
    head.set_defaults(handler=cmd_tree_head)
