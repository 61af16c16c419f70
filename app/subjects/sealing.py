"""Sealing the personal fields of audit rows before they are hashed and stored, and opening
them when they are read.

A tenant declares dotted paths (`user_id`, `ip_address`, `user_agent`, `resource_id`,
`changes.before.email`, `changes.after.email`, `metadata.customer.name`) and the path that names
a row's data subject (default `user_id`). Sealing a row replaces each declared value by a
placeholder — by the keyed digest for `user_id` and `resource_id`, which lists filter on — and
keeps them in the row's `sealed` column: `{"subject": digest, "fields": [path, …], "values":
ciphertext}`, paths dotted as declared (`changes.diff.3.old` for a diff entry's value), the
values sealed together in the order of the paths.
A path under `changes.before` (or `after`) also seals the `old` (or `new`)
of the diff entry of the same field. The chain and the Merkle leaves hash the stored row, so
they never need the plaintext, and erasure (destroying the subject's key) changes no stored
byte. A row without a subject (its subject path empty) is stored as given.

Opening puts each value back, or `"[ERASED]"` where the subject's key is gone.
"""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from app.subjects.crypto import AESGCM, InvalidTag, ServiceKey, dumps, loads, open_sealed, seal
from app.subjects.repository import Handle, SubjectRepository, service_key

ENCRYPTED = "[ENCRYPTED]"
ERASED = "[ERASED]"
DIGESTED = ("user_id", "resource_id")  # columns that listings filter on
COLUMNS = ("user_id", "ip_address", "user_agent", "resource_id")
JSON_ROOTS = ("metadata", "changes.before", "changes.after")

Row = dict[str, Any]
Path = list[Any]


def path_problem(path: str) -> str | None:
    """Why `path` cannot be declared personal (None: it can)."""
    if path in COLUMNS:
        return None
    for root in JSON_ROOTS:
        if path.startswith(root + ".") and all(path[len(root) + 1 :].split(".")):
            return None
    return (
        f"{path!r} is not a personal-data path: use one of {', '.join(COLUMNS)}, or a dotted "
        "path under metadata., changes.before. or changes.after."
    )


def subject_path_problem(path: str) -> str | None:
    if path in ("user_id", "resource_id") or (
        path.startswith("metadata.") and all(path[9:].split("."))
    ):
        return None
    return f"{path!r} cannot name the subject: use user_id, resource_id or a metadata. path"


def _get(row: Row, path: Path) -> Any:
    value: Any = row
    for part in path:
        if (isinstance(value, dict) and part in value) or (
            isinstance(value, list) and isinstance(part, int) and part < len(value)
        ):
            value = value[part]
        else:
            return None
    return value


def _set(row: Row, path: Path, value: Any) -> None:
    parent = _get(row, path[:-1])
    parent[path[-1]] = value


def _path(dotted: str) -> Path:
    parts: Path = dotted.split(".")
    if parts[:2] == ["changes", "diff"]:
        parts[2] = int(parts[2])
    return parts


def _copy(value: Any) -> Any:
    """A copy of JSON (dicts and lists copied, the rest shared): far cheaper than deepcopy."""
    if type(value) is dict:
        return {k: _copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) for v in value]
    return value


def _copied(row: Row, paths: list[Path]) -> Row:
    """`row` with the JSON columns that `paths` reach copied, so they can be changed."""
    out = dict(row)
    for column in {path[0] for path in paths if len(path) > 1}:
        out[column] = _copy(row[column])
    return out


def _subject(row: Row, subject_path: str) -> str | None:
    value = _get(row, subject_path.split("."))
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def _targets(row: Row, fields: Sequence[Path]) -> list[Path]:
    """Where the declared fields of `row` hold a value (the diff's entries included)."""
    found: list[Path] = []
    for path in fields:
        if _get(row, path) is not None:
            found.append(path)
        if path[:1] == ["changes"] and path[1] in ("before", "after"):
            side = "old" if path[1] == "before" else "new"
            dotted = ".".join(path[2:])
            for index, entry in enumerate(_get(row, ["changes", "diff"]) or []):
                if not isinstance(entry, dict) or entry.get("path") != dotted:
                    continue
                if entry.get(side) is not None:
                    found.append(["changes", "diff", index, side])
    return found


async def seal_rows(handle: Handle, tenant_id: UUID, rows: list[Row]) -> list[Row]:
    """The rows as they are stored: each one's personal fields sealed under its subject's key
    (created when new). `rows` are left as they are; without a declaration they are returned."""
    repository = SubjectRepository(handle, tenant_id)
    declared = await repository.config_and_secret()
    if declared is None or not declared[1]:
        return rows
    subject_path, fields = declared[0], [field.split(".") for field in declared[1]]
    secret = declared[2]
    key = ServiceKey(bytes.fromhex(secret)) if secret else await service_key(handle, tenant_id)
    subjects = [_subject(row, subject_path) for row in rows]
    digests = {s: key.digest(tenant_id, s) for s in subjects if s is not None}
    data_keys = await _data_keys(repository, key, set(digests.values()))
    stored = []
    for row, subject in zip(rows, subjects, strict=True):
        targets = _targets(row, fields) if subject is not None else []
        if not targets:
            stored.append(row)
            continue
        digest = digests[subject]  # type: ignore[index]
        out = _copied(row, targets)
        values = []
        for path in targets:
            value = _get(out, path)
            values.append(value)
            if len(path) == 1 and path[0] in DIGESTED:
                out[path[0]] = key.digest(tenant_id, value)
            else:
                _set(out, path, ENCRYPTED)
        out["sealed"] = {
            "subject": digest,
            "fields": [".".join(map(str, path)) for path in targets],
            "values": seal(data_keys[digest], tenant_id, digest, row["id"], values),
        }
        stored.append(out)
    return stored


async def _data_keys(
    repository: SubjectRepository, key: ServiceKey, digests: set[str]
) -> dict[str, AESGCM]:
    tenant_id = repository.tenant_id
    known = await repository.wrapped_keys(digests)
    new = {d: key.new_wrapped_key(tenant_id, d) for d in digests if d not in known}
    if new:
        await repository.add_keys(new)
    for digest, wrapped in known.items():
        if wrapped is None:  # erased, and seen again: a new key for the new events
            known[digest] = key.new_wrapped_key(tenant_id, digest)
            await repository.renew_key(digest, known[digest])  # type: ignore[arg-type]
    wrapped_keys = {**known, **new}
    return {
        d: AESGCM(key.unwrap(tenant_id, d, w)) for d, w in wrapped_keys.items() if w is not None
    }


async def open_rows(handle: Handle, tenant_id: UUID, rows: Sequence[Row]) -> list[Row]:
    """The rows as readers see them: sealed fields opened, or "[ERASED]" without their key.
    Rows without sealed fields come back as they are."""
    digests = {row["sealed"]["subject"] for row in rows if row.get("sealed")}
    if not digests:
        return list(rows)
    repository = SubjectRepository(handle, tenant_id)
    key = await service_key(handle, tenant_id)
    wrapped = await repository.wrapped_keys(digests)
    keys = {d: AESGCM(key.unwrap(tenant_id, d, w)) for d, w in wrapped.items() if w is not None}
    opened = []
    for row in rows:
        if not row.get("sealed"):
            opened.append(row)
            continue
        digest, fields = row["sealed"]["subject"], row["sealed"]["fields"]
        paths = [_path(dotted) for dotted in fields]
        values = _open(keys.get(digest), tenant_id, digest, row, len(paths))
        out = _copied(row, paths)
        for path, value in zip(paths, values, strict=True):
            _set(out, path, value)
        opened.append(out)
    return opened


def _open(key: AESGCM | None, tenant_id: UUID, digest: str, row: Row, count: int) -> list[Any]:
    if key is not None:
        try:
            values: list[Any] = open_sealed(
                key, tenant_id, digest, row["id"], row["sealed"]["values"]
            )
            return values
        except InvalidTag:  # sealed under a key erased since (the subject has a new one)
            pass
    return [ERASED] * count


def masked(row: Row) -> Row:
    """A stored row with its digests shown as the placeholder: what the live stream carries,
    which therefore never holds a sealed field's value."""
    if not row.get("sealed"):
        return row
    out = dict(row)
    for dotted in row["sealed"]["fields"]:
        if dotted in DIGESTED:
            out[dotted] = ENCRYPTED
    return out


async def filter_values(handle: Handle, tenant_id: UUID, value: str) -> list[str]:
    """What a filter on a digested column matches: the value itself (rows stored before the
    field was declared, or without a subject) and its digest."""
    declared = await SubjectRepository(handle, tenant_id).config()
    if declared is None or not set(declared[1]) & set(DIGESTED):
        return [value]
    return [value, (await service_key(handle, tenant_id)).digest(tenant_id, value)]


async def subject_digest(handle: Handle, tenant_id: UUID, subject_id: str) -> str:
    return (await service_key(handle, tenant_id)).digest(tenant_id, subject_id)


SEALED_KEY = "sealed"  # where a stream payload carries its row's sealed fields


def stream_payload(shown: str, stored: Row) -> str:
    """The JSON of a live-stream event: the row as shown (a JSON object), with its sealed
    fields when it has them (opened, and removed, by `open_payloads` when the stream is
    read)."""
    if not stored.get("sealed"):
        return shown
    return f'{shown[:-1]},"{SEALED_KEY}":{dumps(stored["sealed"]).decode()}}}'


async def open_payloads(handle: Handle, tenant_id: UUID, payloads: list[str]) -> list[str]:
    """Stream payloads as readers see them: the sealed fields of audit events opened (or
    "[ERASED]"), the ciphertext left out. Other payloads come back as they are."""
    marker = f'"{SEALED_KEY}":{{'
    found = [i for i, payload in enumerate(payloads) if marker in payload]
    if not found:
        return payloads
    rows = [loads(payloads[i]) for i in found]
    for row in rows:
        row["id"] = UUID(row["id"])
    opened = await open_rows(handle, tenant_id, rows)
    out = list(payloads)
    for i, row in zip(found, opened, strict=True):
        row.pop(SEALED_KEY, None)
        out[i] = dumps(row).decode()
    return out
