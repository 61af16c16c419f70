"""An auditor outside the service: `actionlog verify-proof`, `actionlog tree-head` and the
Python client's checks, on the service's own JSON answers and on forged ones."""

import asyncio
import io
import json
import os
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from actionlog_client import proofs as client_proofs

from app.cli import main
from tests.conftest import TenantHandle
from tests.proofs.rfc9162 import head_signed
from tests.proofs.test_merkle_log import AUDITS, all_events, get, record

BIN = Path(sys.executable).parent


async def answers(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    """What an auditor saves: an older head, an event, a newer head, and the proofs."""
    await record(client, tenant, 9, "first")
    older = await get(client, f"{AUDITS}/tree-head", tenant)
    await record(client, tenant, 20, "second")
    head = await get(client, f"{AUDITS}/tree-head", tenant)
    event = (await all_events(client, tenant))[5]
    size = head["tree_size"]
    return {
        "public_key": await get(client, f"{AUDITS}/public-key", tenant),
        "older": older,
        "head": head,
        "event": await get(client, f"{AUDITS}/{event['id']}", tenant),
        "proof": await get(client, f"{AUDITS}/{event['id']}/proof", tenant, tree_size=size),
        "consistency": await get(
            client, f"{AUDITS}/consistency", tenant, first=older["tree_size"], second=size
        ),
    }


def save(directory: Path, documents: dict[str, Any]) -> dict[str, str]:
    paths = {}
    for name, document in documents.items():
        path = directory / f"{name}.json"
        path.write_text(json.dumps(document))
        paths[name] = str(path)
    return paths


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_cli_checks_an_event_and_two_heads(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saved = await answers(client, tenant)
    files = save(tmp_path, saved)
    key = ["--public-key", files["public_key"]]
    code, out, err = run(
        capsys,
        "verify-proof",
        *key,
        "--head",
        files["head"],
        "--event",
        files["event"],
        "--proof",
        files["proof"],
    )
    assert code == 0, err
    assert out.startswith(f"ok: event {saved['event']['id']} is leaf 5 ")

    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(saved["consistency"])))
    code, out, err = run(
        capsys,
        "verify-proof",
        *key,
        "--head",
        files["head"],
        "--older",
        files["older"],
        "--proof",
        "-",
    )
    assert code == 0, err
    assert "extends the tree of" in out

    forged_event = {**saved["event"], "hash": "0" * 64}
    forged_head = {**saved["head"], "root_hash": saved["older"]["root_hash"]}
    (tmp_path / "bad").mkdir()
    bad = save(tmp_path / "bad", {"event": forged_event, "head": forged_head})
    for head, event, reason in (
        (files["head"], bad["event"], "inclusion proof does not lead"),
        (bad["head"], files["event"], "signature does not verify"),
    ):
        code, out, err = run(
            capsys,
            "verify-proof",
            *key,
            "--head",
            head,
            "--event",
            event,
            "--proof",
            files["proof"],
        )
        assert code == 1 and reason in err, err
    code, _, err = run(
        capsys,
        "verify-proof",
        *key,
        "--head",
        files["older"],
        "--older",
        files["head"],
        "--proof",
        files["consistency"],
    )
    assert code == 1 and "does not verify" in err, err


async def test_the_python_client_runs_the_same_checks(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    saved = await answers(client, tenant)
    public_key = saved["public_key"]["public_key"]
    client_proofs.check_event_in_head(saved["event"], saved["proof"], saved["head"], public_key)
    client_proofs.check_heads_consistent(
        saved["older"], saved["head"], saved["consistency"], public_key
    )
    with pytest.raises(client_proofs.ProofError, match="signature"):
        forged = {**saved["head"], "tree_size": saved["head"]["tree_size"] + 1}
        client_proofs.check_event_in_head(saved["event"], saved["proof"], forged, public_key)
    with pytest.raises(client_proofs.ProofError, match="does not lead"):
        moved = {**saved["proof"], "leaf_index": saved["proof"]["leaf_index"] + 1}
        client_proofs.check_event_in_head(
            {**saved["event"], "sequence": moved["leaf_index"] + 1},
            moved,
            saved["head"],
            public_key,
        )
    with pytest.raises(client_proofs.ProofError, match="join"):  # another first root
        client_proofs.verify_consistency(
            saved["older"]["tree_size"],
            saved["head"]["tree_size"],
            saved["consistency"]["proof"],
            saved["head"]["root_hash"],
            saved["head"]["root_hash"],
        )


async def tree_head_command(database_url: str, tenant: TenantHandle) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "warning"}
    process = await asyncio.create_subprocess_exec(
        str(BIN / "actionlog"),
        "tree-head",
        "--tenant",
        tenant.slug,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    printed: dict[str, Any] = json.loads(out)
    return printed


async def test_tree_head_command_signs_and_keeps_the_current_head(
    app: Any, database_url: str, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    await record(client, tenant, 4, "cli")
    printed = await tree_head_command(database_url, tenant)
    public_key = (await get(client, f"{AUDITS}/public-key", tenant))["public_key"]
    assert head_signed(printed, public_key)
    current = await get(client, f"{AUDITS}/tree-head", tenant)
    assert (printed["tree_size"], printed["root_hash"]) == (
        current["tree_size"],
        current["root_hash"],
    )
    kept = await get(client, f"{AUDITS}/tree-heads", tenant)
    assert kept[0] == printed
    # printed again for the same tree: signed anew, kept and sent to the stream once only
    again = await tree_head_command(database_url, tenant)
    assert again["tree_size"] == printed["tree_size"]
    assert await get(client, f"{AUDITS}/tree-heads", tenant) == kept
    events = await app.state.stream_hub.read(UUID(tenant.id), 0, 1000)
    heads = [json.loads(e.payload) for e in events if e.kind == "tree_head"]
    assert heads == [printed]
    assert events[-1].kind == "tree_head"  # after the events it covers
