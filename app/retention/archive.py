"""Archive files: rows about to be pruned, written as gzip NDJSON with a manifest, durably.

Layout under ARCHIVE_DIR: `<tenant id>/<kind>/<YYYY-MM>/<kind>-<first row>.ndjson.gz` and,
beside it, the same name with `.manifest.json`. `kind` is `actions` or `audits`; the period is
the UTC month of the rows' `created_at` (a file never spans two months); a file holds one
batch, named after its first row, so the run that repeats a batch after a crash writes the same
name again and replaces the incomplete copy instead of adding a second one.

Each line is one row with every column: ids as strings, timestamps as UTC ISO 8601 with
microseconds (`2026-06-01T12:00:00.123456Z`, the chain's spelling), JSON columns as JSON. The
manifest holds the tenant, kind, period, time range, row count, first and last audit sequence
and hash, the SHA-256 and size of the data file, and for audits the signed checkpoint that
replaces the rows in the database.

Durability: the data file is written to a temporary name, fsynced, renamed, and its directory
fsynced; then the manifest the same way. Only then are the rows deleted (`service.py`). gzip
headers carry no time (mtime 0), so the same rows give the same bytes.
"""

import gzip
import hashlib
import json
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

Kind = Literal["actions", "audits"]
KINDS: tuple[Kind, ...] = ("actions", "audits")
FORMAT = "actionlog-archive/1"
DATA_SUFFIX = ".ndjson.gz"
MANIFEST_SUFFIX = ".manifest.json"


def timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def ndjson_line(row: Mapping[str, Any]) -> bytes:
    return (json.dumps(dict(row), default=_default, separators=(",", ":")) + "\n").encode()


def period_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def same_period(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The leading rows that share the first row's month (a file never spans two)."""
    period = period_of(rows[0]["created_at"])
    taken = []
    for row in rows:
        if period_of(row["created_at"]) != period:
            break
        taken.append(row)
    return taken


def file_stem(kind: Kind, first: Mapping[str, Any]) -> str:
    if kind == "audits":
        return f"audits-{first['sequence']:012d}"
    moment = first["created_at"].astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"actions-{moment}-{first['id']}"


@dataclass(frozen=True)
class WrittenArchive:
    path: str  # relative to the archive directory
    manifest: dict[str, Any]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _durable_write(target: Path, data: bytes) -> None:
    """`data` at `target`, all or nothing, surviving a crash once this returns."""
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    _fsync_dir(target.parent)


def _gzip(lines: Iterator[bytes]) -> bytes:
    import io

    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as zipped:
        for line in lines:
            zipped.write(line)
    return buffer.getvalue()


class ArchiveDirectory:
    """One ARCHIVE_DIR: writes batches, finds manifests, removes incomplete ones."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(
        self,
        tenant_id: UUID,
        kind: Kind,
        rows: Sequence[Mapping[str, Any]],
        checkpoint: dict[str, Any] | None = None,
        public_key: str | None = None,
    ) -> WrittenArchive:
        first, last = rows[0], rows[-1]
        period = period_of(first["created_at"])
        relative = Path(str(tenant_id), kind, period, file_stem(kind, first) + DATA_SUFFIX)
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        data = _gzip(ndjson_line(row) for row in rows)
        _durable_write(target, data)
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "tenant_id": str(tenant_id),
            "kind": kind,
            "period": period,
            "file": target.name,
            "rows": len(rows),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "first_at": timestamp(first["created_at"]),
            "last_at": timestamp(last["created_at"]),
            "first_id": str(first["id"]),
            "last_id": str(last["id"]),
            "first_sequence": first.get("sequence") if kind == "audits" else None,
            "last_sequence": last.get("sequence") if kind == "audits" else None,
            "first_prev_hash": first.get("prev_hash") if kind == "audits" else None,
            "first_hash": first.get("hash") if kind == "audits" else None,
            "last_hash": last.get("hash") if kind == "audits" else None,
            "checkpoint": checkpoint,
            "public_key": public_key,
            "host": socket.gethostname(),
            "created_at": timestamp(datetime.now(UTC)),
        }
        manifest_path = manifest_path_of(target)
        _durable_write(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
        return WrittenArchive(str(relative), manifest)

    def manifests(self, tenant_id: UUID, kind: Kind) -> list[Path]:
        directory = self.root / str(tenant_id) / kind
        if not directory.is_dir():
            return []
        return sorted(directory.glob(f"*/*{MANIFEST_SUFFIX}"))

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def remove_incomplete(self, tenant_id: UUID, kind: Kind, recorded: set[str]) -> int:
        """Remove files of runs whose delete never committed (not in `recorded`).

        Their rows are still in the database and go into the next file written; without this
        they would be archived twice. Leftover temporary files go too.
        """
        removed = 0
        for manifest in self.manifests(tenant_id, kind):
            data = data_path_of(manifest)
            if self.relative(data) in recorded:
                continue
            manifest.unlink(missing_ok=True)
            data.unlink(missing_ok=True)
            removed += 1
        directory = self.root / str(tenant_id) / kind
        if directory.is_dir():
            for temporary in directory.glob("*/.*.tmp-*"):
                temporary.unlink(missing_ok=True)
            for period in directory.iterdir():
                for data in period.glob(f"*{DATA_SUFFIX}"):
                    if self.relative(data) not in recorded and not manifest_path_of(data).exists():
                        data.unlink(missing_ok=True)
                        removed += 1
        return removed


def manifest_path_of(data: Path) -> Path:
    return data.with_name(data.name.removesuffix(DATA_SUFFIX) + MANIFEST_SUFFIX)


def data_path_of(manifest: Path) -> Path:
    return manifest.with_name(manifest.name.removesuffix(MANIFEST_SUFFIX) + DATA_SUFFIX)


def read_lines(path: Path) -> Iterator[bytes]:
    """The NDJSON lines of an archive file, decompressed as they are read."""
    with gzip.open(path, "rb") as handle:
        yield from handle


def read_manifest(data: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(manifest_path_of(data).read_text())
    return manifest


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
