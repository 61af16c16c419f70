"""Each worker's compiled schemas, kept in step with every worker's and host's changes.

Recording must not pay a query per action for its schema, so every worker holds the schema in
force of every action type that has one, compiled (`check` is a dictionary lookup and, for a
type with a schema, one validation). A background loop reads a change mark every
RELOAD_SECONDS (`repository.change_mark`: the number of schema rows and the sum of their
change counters, which every put and delete raises) and reloads when it moved; versions are
immutable, so a version already compiled is reused, and a new version is compiled once per
worker. A schema put or deleted through this worker applies here at once (`installed`), and
on every other worker or host within RELOAD_SECONDS.

Losing this cache loses nothing: it is rebuilt from the database at start and on every change.
Until the first load (a database down at start), actions are recorded unchecked.
"""

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from app.action_schemas.repository import change_mark, every_schema
from app.action_schemas.validation import CompiledSchema
from app.core.background import stopping
from app.core.errors import Unprocessable

RELOAD_SECONDS = 0.5
PROVISIONAL_SECONDS = 5.0  # how long a local change outranks an older reload
logger = logging.getLogger("actionlog")


@dataclass(frozen=True)
class _Entry:
    changes: int
    schema: CompiledSchema | None  # None: the type's schema was deleted
    provisional_until: float = 0.0


class SchemaCatalog:
    """The compiled schemas of every tenant, for the recording paths of one worker."""

    def __init__(self, engine: AsyncEngine, reload_seconds: float = RELOAD_SECONDS) -> None:
        self.engine = engine
        self.reload_seconds = reload_seconds
        self._entries: dict[tuple[UUID, str], _Entry] = {}
        self._mark: tuple[int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    # Keeping in step

    async def start(self) -> None:
        try:
            await self.reload()
        except Exception as exc:  # the database may still be starting: the loop retries
            logger.warning("action schemas not loaded yet: %s", exc.__class__.__name__)
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.reload_seconds)
            try:
                await self.reload()
            except Exception as exc:
                if stopping():
                    raise asyncio.CancelledError from exc
                logger.warning("action schemas not reloaded: %s", exc.__class__.__name__)

    async def reload(self, force: bool = False) -> None:
        """Read the change mark; when it moved, every schema row (compiling new versions)."""
        async with self.engine.connect() as connection:
            mark = await change_mark(connection)
            if mark == self._mark and not force:
                return
            rows = await every_schema(connection)
        self._merge(rows)
        self._mark = mark

    def _merge(self, rows: Any) -> None:
        now = time.monotonic()
        fresh: dict[tuple[UUID, str], _Entry] = {}
        for row in rows:
            key = (row.tenant_id, row.action_type)
            known = self._entries.get(key)
            if known is not None and known.changes > row.changes and known.provisional_until > now:
                fresh[key] = known  # changed here, not yet committed when this was read
                continue
            fresh[key] = _Entry(row.changes, self._compiled(known, row) if row.active else None)
        for key, known in self._entries.items():
            if key not in fresh and known.provisional_until > now:
                fresh[key] = known
        self._entries = fresh

    @staticmethod
    def _compiled(known: _Entry | None, row: Any) -> CompiledSchema | None:
        if known is not None and known.schema is not None and known.schema.version == row.version:
            return known.schema
        parts = {
            "request_payload": row.request_payload,
            "response_data": row.response_data,
            "metadata": row.metadata,
        }
        try:
            return CompiledSchema.of(row.action_type, row.version, row.mode, parts)
        except Exception as exc:  # refused when put; never let one schema stop the others
            logger.warning("schema %s v%s not compiled: %s", row.action_type, row.version, exc)
            return None

    def installed(
        self, tenant_id: UUID, action_type: str, changes: int, schema: CompiledSchema | None
    ) -> None:
        """A change made through this worker: in force here at once."""
        until = time.monotonic() + PROVISIONAL_SECONDS
        self._entries = {**self._entries, (tenant_id, action_type): _Entry(changes, schema, until)}

    def schema_of(self, tenant_id: UUID, action_type: str) -> CompiledSchema | None:
        entry = self._entries.get((tenant_id, action_type))
        return None if entry is None else entry.schema

    # Checking what is recorded

    def check(self, tenant_id: UUID, rows: list[dict[str, Any]], batch: bool) -> None:
        """Check new action rows against their types' schemas: `enforce` refuses (a 422 naming
        each field, rule and, in a batch, item); `warn` notes `schema_errors` on the row. A
        checked row gets the `schema_version` it was checked against."""
        if not self._entries:
            return
        refused: list[dict[str, Any]] = []
        for index, row in enumerate(rows):
            schema = self.schema_of(tenant_id, row["action_type"])
            if schema is None:
                continue
            findings = schema.findings(row)
            row["schema_version"] = schema.version
            if not findings:
                continue
            if schema.mode == "warn":
                row["schema_errors"] = findings
                continue
            where: tuple[Any, ...] = ("body", index) if batch else ("body",)
            refused += [_refusal(where, schema, finding) for finding in findings]
        if refused:
            raise Unprocessable(refused)

    def check_update(
        self, tenant_id: UUID, action_type: str, changed: dict[str, Any], previous: Any
    ) -> tuple[Any, int | None] | None:
        """Check the parts a lifecycle update changes; None when the type has no schema, else
        the action's findings (those of unchanged parts kept) and the schema version."""
        schema = self.schema_of(tenant_id, action_type)
        if schema is None or not changed:
            return None
        findings = schema.findings(changed)
        if findings and schema.mode == "enforce":
            raise Unprocessable([_refusal(("body",), schema, finding) for finding in findings])
        kept = [f for f in previous or () if f["path"].split(".", 1)[0] not in changed]
        return (kept + findings) or None, schema.version


def _refusal(
    where: tuple[Any, ...], schema: CompiledSchema, finding: dict[str, str]
) -> dict[str, Any]:
    return {
        "type": "schema",
        "loc": [*where, *finding["path"].split(".")],
        "msg": f"{finding['message']} (schema of {schema.action_type} v{schema.version})",
    }
