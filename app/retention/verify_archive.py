"""Offline verification of archive files: what an auditor runs, with no database.

For every file: its SHA-256 and row count must match its manifest. For audit files, per
tenant, in sequence order: each row's hash is recomputed from its content and the previous
row's hash (`app/audits/chain.py`), sequences follow without gaps from file to file, and each
file's last row must be the signed checkpoint in its manifest, whose Ed25519 signature must
hold under the published key (`--public-key`, else the key named in the manifest, whose id
must match). A file whose first row is not sequence 1 is checked from its own first
`prev_hash`: the signed checkpoint at its end still fixes every row before it, since changing
any of them would change every hash after it.
"""

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from app.audits.chain import GENESIS_HASH, row_hash
from app.audits.signing import checkpoint_message, verify_signature
from app.retention.archive import (
    DATA_SUFFIX,
    MANIFEST_SUFFIX,
    data_path_of,
    file_sha256,
    read_lines,
    read_manifest,
)


@dataclass
class FileReport:
    path: Path
    kind: str = "?"
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


def archive_files(paths: Iterable[Path]) -> list[Path]:
    """The data files named by `paths`: files, their manifests, or directories (recursive)."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(path.rglob(f"*{DATA_SUFFIX}"))
        elif path.name.endswith(MANIFEST_SUFFIX):
            found.add(data_path_of(path))
        else:
            found.add(path)
    return sorted(found)


def _content(line: bytes) -> dict[str, Any]:
    row: dict[str, Any] = json.loads(line)
    row["created_at"] = datetime.fromisoformat(row["created_at"])
    return row


@dataclass
class _Chain:
    last_sequence: int | None = None
    last_hash: str | None = None


def _check_file(path: Path, public_key: str | None, chains: dict[str, _Chain]) -> FileReport:
    report = FileReport(path)
    try:
        manifest = read_manifest(path)
    except (OSError, ValueError) as exc:
        report.problems.append(f"no readable manifest: {exc.__class__.__name__}")
        return report
    report.kind = manifest.get("kind", "?")
    try:
        if file_sha256(path) != manifest["sha256"]:
            report.problems.append("the file's SHA-256 does not match its manifest")
        lines = list(read_lines(path))
    except (OSError, EOFError) as exc:
        report.problems.append(f"unreadable: {exc}")
        return report
    report.rows = len(lines)
    if len(lines) != manifest["rows"]:
        report.problems.append(f"{len(lines)} rows, the manifest says {manifest['rows']}")
    if report.kind == "audits":
        _check_audits(report, manifest, lines, public_key, chains)
    return report


def _check_audits(
    report: FileReport,
    manifest: dict[str, Any],
    lines: list[bytes],
    public_key: str | None,
    chains: dict[str, _Chain],
) -> None:
    chain = chains.setdefault(manifest["tenant_id"], _Chain())
    for number, line in enumerate(lines, 1):
        try:
            row = _content(line)
        except (ValueError, KeyError):
            report.problems.append(f"line {number} is not an archived audit row")
            return
        where = f"line {number} (sequence {row.get('sequence')})"
        if str(row["tenant_id"]) != manifest["tenant_id"]:
            report.problems.append(f"{where} belongs to another tenant")
        if chain.last_sequence is None:
            if row["sequence"] == 1 and row["prev_hash"] != GENESIS_HASH:
                report.problems.append(f"{where}: the first row does not follow the genesis hash")
            elif row["sequence"] != 1:
                report.notes.append(
                    f"checked from sequence {row['sequence']}: earlier rows are not among the "
                    "given files"
                )
        elif row["sequence"] != chain.last_sequence + 1:
            report.problems.append(
                f"{where}: expected sequence {chain.last_sequence + 1} (rows missing or added)"
            )
        elif row["prev_hash"] != chain.last_hash:
            report.problems.append(f"{where}: prev_hash does not match the previous row's hash")
        if row_hash(row["prev_hash"], row) != row["hash"]:
            report.problems.append(f"{where}: the content does not match its hash (changed)")
        # Keep following the stored hashes past a bad row, so that the next files are judged
        # on their own.
        chain.last_sequence, chain.last_hash = row["sequence"], row["hash"]
    if not report.problems:
        _check_checkpoint(report, manifest, chain, public_key)


def _check_checkpoint(
    report: FileReport, manifest: dict[str, Any], chain: _Chain, public_key: str | None
) -> None:
    checkpoint = manifest.get("checkpoint")
    if not checkpoint:
        report.problems.append("the manifest has no checkpoint")
        return
    if (checkpoint["sequence"], checkpoint["hash"]) != (chain.last_sequence, chain.last_hash):
        report.problems.append(
            f"the last row (sequence {chain.last_sequence}) is not the signed checkpoint "
            f"(sequence {checkpoint['sequence']})"
        )
        return
    key = public_key or manifest.get("public_key")
    if not key:
        report.problems.append("no public key to check the checkpoint with")
        return
    if hashlib.sha256(base64.b64decode(key)).hexdigest() != checkpoint["key_id"]:
        report.problems.append("the checkpoint was signed by another key than the one given")
        return
    message = checkpoint_message(
        UUID(checkpoint["tenant_id"]),
        checkpoint["sequence"],
        checkpoint["hash"],
        datetime.fromisoformat(checkpoint["created_at"]),
        checkpoint["key_id"],
    )
    if not verify_signature(key, checkpoint["signature"], message):
        report.problems.append("the checkpoint's signature does not verify")
    else:
        report.notes.append(f"joins the signed checkpoint at sequence {checkpoint['sequence']}")


def verify_archives(paths: Iterable[Path], public_key: str | None = None) -> list[FileReport]:
    """Check every archive file named by `paths`; audit files chain per tenant."""
    files = archive_files(paths)
    manifests = {}
    for path in files:
        try:
            manifests[path] = read_manifest(path)
        except (OSError, ValueError):
            manifests[path] = {}

    def order(path: Path) -> tuple[str, str, int, str]:
        m = manifests[path]
        return (m.get("tenant_id", ""), m.get("kind", ""), m.get("first_sequence") or 0, str(path))

    chains: dict[str, _Chain] = {}
    return [_check_file(path, public_key, chains) for path in sorted(files, key=order)]
