"""Signed tree heads leave through the log-stream destinations: each head kept (on the
schedule, or by `actionlog tree-head`) is a `tree_head` record of the tenant's stream, which a
destination delivers when its kinds hold `audit` or `tree_head`; an auditor checks it, from
the receiver or the bucket, with nothing but the public key."""

import gzip
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from app.cli import main
from app.core.db import utcnow
from app.proofs.heads import TreeHead
from app.proofs.scheduler import keep_head
from tests.conftest import TenantHandle
from tests.destinations.conftest import (
    HttpReceiver,
    S3Server,
    create_destination,
    wait_until,
    write_actions,
    write_audits,
)
from tests.proofs.rfc9162 import head_signed

AUDITS = "/api/v1/logs/audits"


async def keep(app: Any, tenant: TenantHandle) -> TreeHead:
    """Keep the tenant's current head as the scheduler does (one tenant only)."""
    head = await keep_head(app.state.sessionmaker, app.state.signer, UUID(tenant.id))
    assert head is not None
    return head


async def get(client: httpx.AsyncClient, path: str, tenant: TenantHandle, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


def at(receiver: HttpReceiver, path: str) -> list[dict[str, Any]]:
    """The records the receiver accepted at `path`, in arrival order."""
    return [r for q in receiver.requests if q.path == path for r in json.loads(q.body)]


def of_kind(receiver: HttpReceiver, path: str, kind: str) -> list[dict[str, Any]]:
    return [record for record in at(receiver, path) if record["kind"] == kind]


def as_answered(record: dict[str, Any]) -> dict[str, Any]:
    """A delivered record without the two fields every record gets (`stream_id`, `kind`)."""
    return {k: v for k, v in record.items() if k not in ("stream_id", "kind")}


async def test_a_kept_head_reaches_destinations_of_audits_and_of_tree_heads(
    app: Any, client: httpx.AsyncClient, tenant: TenantHandle, http_receiver: HttpReceiver
) -> None:
    for path, kinds in (
        ("/audits", ["audit"]),
        ("/heads", ["tree_head"]),
        ("/actions", ["action"]),
    ):
        created = await create_destination(
            client, tenant, type="http", config={"url": http_receiver.url + path}, kinds=kinds
        )
        assert created["kinds"] == kinds
    await write_audits(client, tenant, 3)
    head = await keep(app, tenant)
    # an action after the head: once it reached /actions, the head was passed over there
    await write_actions(client, tenant, 1)

    await wait_until(lambda: of_kind(http_receiver, "/audits", "tree_head"))
    await wait_until(lambda: of_kind(http_receiver, "/heads", "tree_head"))
    await wait_until(lambda: of_kind(http_receiver, "/actions", "action"))
    assert {r["kind"] for r in at(http_receiver, "/actions")} == {"action"}
    assert {r["kind"] for r in at(http_receiver, "/heads")} == {"tree_head"}
    audits = at(http_receiver, "/audits")
    assert [r.get("resource_id") for r in audits][-4:] == ["0", "1", "2", None]
    assert audits[-1]["stream_id"] > audits[-2]["stream_id"]  # in the stream's order

    (delivered,) = of_kind(http_receiver, "/heads", "tree_head")
    (kept,) = await get(client, f"{AUDITS}/tree-heads", tenant)
    assert as_answered(delivered) == kept == head.as_json()
    assert list(as_answered(delivered)) == list(kept)  # the answer's fields, in its order
    public_key = (await get(client, f"{AUDITS}/public-key", tenant))["public_key"]
    assert head_signed(delivered, public_key)
    assert audits[-1] == delivered


async def test_a_head_in_a_bucket_verifies_offline(
    app: Any,
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    s3_server: S3Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket = s3_server.bucket(f"heads-{tenant.id[-12:]}")
    await create_destination(
        client,
        tenant,
        type="s3",
        config=s3_server.config(bucket, prefix="locked/"),
        kinds=["audit"],
    )
    await write_audits(client, tenant, 4)
    head = await keep(app, tenant)

    def head_objects() -> dict[str, bytes]:
        objects = s3_server.objects(bucket)
        return {k: v for k, v in objects.items() if k.startswith("locked/tree_head/")}

    objects = await wait_until(head_objects, every=0.5)
    ((key, body),) = objects.items()
    (line,) = gzip.decompress(body).splitlines()
    record = json.loads(line)
    day = utcnow().strftime("%Y/%m/%d")
    assert key == f"locked/tree_head/{day}/{record['stream_id']}-{record['stream_id']}.ndjson.gz"
    assert record["kind"] == "tree_head" and as_answered(record) == head.as_json()
    audit_keys = [k for k in s3_server.objects(bucket) if k.startswith("locked/audit/")]
    assert audit_keys  # the audit events of the same destination, under their own kind

    # an auditor: the head from the bucket, an event and its proof, and the public key
    event = (await get(client, AUDITS, tenant, limit=1))[0]
    proof = await get(
        client, f"{AUDITS}/{event['id']}/proof", tenant, tree_size=record["tree_size"]
    )
    files = {
        "head": line.decode(),
        "event": json.dumps(event),
        "proof": json.dumps(proof),
        "key": json.dumps(await get(client, f"{AUDITS}/public-key", tenant)),
    }
    for name, text in files.items():
        (tmp_path / f"{name}.json").write_text(text)
    args = ["verify-proof", "--public-key", str(tmp_path / "key.json")]
    for name in ("head", "event", "proof"):
        args += [f"--{name}", str(tmp_path / f"{name}.json")]
    code = main(args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"of the tree of {head.tree_size} events signed at {head.timestamp}" in captured.out
    # the same head with its root changed does not verify
    forged = {**record, "root_hash": "00" * 32}
    (tmp_path / "head.json").write_text(json.dumps(forged))
    assert main(args) == 1
    assert "does not verify" in capsys.readouterr().err


async def test_a_head_of_a_size_already_kept_is_not_sent_again(
    app: Any, client: httpx.AsyncClient, tenant: TenantHandle, http_receiver: HttpReceiver
) -> None:
    await create_destination(
        client, tenant, type="http", config={"url": http_receiver.url}, kinds=["tree_head"]
    )
    await write_audits(client, tenant, 2)
    first = await keep(app, tenant)
    again = await keep_head(app.state.sessionmaker, app.state.signer, UUID(tenant.id))
    assert again is None
    await write_audits(client, tenant, 1)
    second = await keep(app, tenant)

    def both() -> list[dict[str, Any]]:
        found = of_kind(http_receiver, "/", "tree_head")
        return found if len(found) >= 2 else []

    # the second head arrives after the first, and they are the only ones
    records = await wait_until(both)
    assert [r["tree_size"] for r in records] == [first.tree_size, second.tree_size]
