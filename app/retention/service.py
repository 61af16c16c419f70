"""Retention: prune each tenant's old actions and audit rows, archiving them first.

A tenant's `retention_days` bounds its actions, `audit_retention_days` its audit rows (None:
kept forever). A prune of one tenant and kind runs under that tenant and kind's lock
(`locks.py`) in batches of RETENTION_BATCH_ROWS, each its own short transaction:

1. read the oldest batch before the cutoff (cut at a month boundary: one file, one period);
2. for audits, sign a checkpoint of the batch's last row;
3. write the archive file and manifest, fsynced (`archive.py`), unless ARCHIVE=false;
4. in one transaction: record the file in `retention_archives`, store the checkpoint, delete
   the rows (actions: only if unchanged since step 1, their rollups subtracted exactly).

A crash between 3 and 4 leaves a file with no record and rows still in the database; the
next run removes such files before it starts and archives those rows again, into a file of
the same name. So no row is lost, and none is in two recorded files. Between batches the
pruner rests (RETENTION_DUTY, RETENTION_BATCH_PAUSE_MS), so that recording keeps most of its
throughput: the scheduler prunes inside a serving worker.
Each prune that deleted something is written to the tenant's audit trail (`purge`).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.actions.repository import ActionRepository
from app.audits.checkpoints import Checkpoint, CheckpointRepository
from app.audits.service import AuditService
from app.audits.signing import SignerSource
from app.core.auth import Actor
from app.core.config import Settings
from app.core.db import utcnow
from app.core.redact import PayloadRules
from app.core.tenancy import tenant_session
from app.retention.archive import KINDS, ArchiveDirectory, Kind, WrittenArchive, same_period
from app.retention.locks import RetentionLocks
from app.retention.models import ArchiveRecord
from app.retention.repository import ArchiveRepository, list_archives
from app.retention.schemas import ArchiveRead

logger = logging.getLogger("actionlog.retention")

MAX_RETRIES = 10  # batches read again because a row changed meanwhile, per prune
AUDITED_TABLE = {"actions": "action_logs", "audits": "audit_logs"}

# Called after a batch's archive is durable and before its rows are deleted: the test hook
# that injects a crash there.
AfterArchive = Callable[[WrittenArchive | None], Awaitable[None]]


@dataclass(frozen=True)
class Pruned:
    tenant_id: UUID
    kind: Kind
    before: datetime
    deleted: int
    files: int
    through_sequence: int | None = None


@dataclass(frozen=True)
class RetentionConfig:
    archive_dir: Path | None  # None: ARCHIVE=false, rows are deleted without a copy
    batch_rows: int
    batch_pause_s: float
    duty: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetentionConfig":
        return cls(
            settings.archive_dir if settings.archive else None,
            settings.retention_batch_rows,
            settings.retention_batch_pause_ms / 1000,
            settings.retention_duty,
        )

    def pause_after(self, worked_s: float) -> float:
        """How long to rest after a batch that took `worked_s`, to work `duty` of the time."""
        return max(self.batch_pause_s, worked_s * (1 / self.duty - 1))


class _Changed(Exception):
    """A row of the batch changed between reading and deleting: read the batch again."""


def retention_cutoff(days: int, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=days)


class Pruner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        rules: PayloadRules,
        signer: SignerSource,
        locks: RetentionLocks,
        config: RetentionConfig,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.rules = rules
        self.signer = signer
        self.locks = locks
        self.config = config
        self.archives = ArchiveDirectory(config.archive_dir) if config.archive_dir else None
        self.after_archive: AfterArchive | None = None

    async def prune(self, tenant_id: UUID, kind: Kind, before: datetime, actor: Actor) -> Pruned:
        """Archive and delete the tenant's rows of `kind` created before `before`."""
        async with self.locks.hold(f"{tenant_id}:{kind}"):
            if self.archives is not None:
                async with tenant_session(self.sessionmaker, tenant_id) as session:
                    recorded = await ArchiveRepository(session, tenant_id).paths(kind)
                removed = self.archives.remove_incomplete(tenant_id, kind, recorded)
                if removed:
                    logger.warning("removed %d unfinished archive file(s) of %s", removed, kind)
            deleted = files = retries = 0
            through: int | None = None
            while True:
                began = time.perf_counter()
                try:
                    batch = await self._batch(tenant_id, kind, before)
                except _Changed:
                    retries += 1
                    if retries > MAX_RETRIES:  # a row rewritten over and over: try next run
                        logger.warning("%s of %s keep changing; stopped", kind, tenant_id)
                        break
                    continue
                if batch is None:
                    break
                count, wrote, last_sequence = batch
                deleted, files = deleted + count, files + wrote
                through = last_sequence or through
                if pause := self.config.pause_after(time.perf_counter() - began):
                    await asyncio.sleep(pause)
        pruned = Pruned(tenant_id, kind, before, deleted, files, through)
        if deleted:
            await self._audit(pruned, actor)
        return pruned

    async def _batch(
        self, tenant_id: UUID, kind: Kind, before: datetime
    ) -> tuple[int, int, int | None] | None:
        """One batch: (rows deleted, files written, last audit sequence), or None when done."""
        async with tenant_session(self.sessionmaker, tenant_id) as session:
            if kind == "audits":
                found = await CheckpointRepository(session, tenant_id).oldest_rows_before(
                    before, self.config.batch_rows
                )
            else:
                found = await ActionRepository(session, tenant_id).oldest_before(
                    before, self.config.batch_rows
                )
        if not found:
            return None
        rows = same_period([dict(row._mapping) for row in found])
        checkpoint = None
        signer = await self.signer.get()
        if kind == "audits":
            last = rows[-1]
            checkpoint = Checkpoint.signed(
                signer, tenant_id, last["sequence"], last["hash"], utcnow()
            )
        written = None
        if self.archives is not None:  # encoding, gzip and fsync off the event loop
            written = await asyncio.to_thread(
                self.archives.write,
                tenant_id,
                kind,
                rows,
                checkpoint.as_json() if checkpoint else None,
                signer.public_key if checkpoint else None,
            )
        if self.after_archive is not None:
            await self.after_archive(written)
        async with tenant_session(self.sessionmaker, tenant_id) as session, session.begin():
            if written is not None:
                await ArchiveRepository(session, tenant_id).add(_record(kind, written))
            if checkpoint is not None:
                await CheckpointRepository(session, tenant_id).prune_through(checkpoint)
            else:
                await self._delete_actions(session, tenant_id, rows)
        return len(rows), int(written is not None), checkpoint.sequence if checkpoint else None

    @staticmethod
    async def _delete_actions(
        session: AsyncSession, tenant_id: UUID, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        versions = {row["id"]: row["updated_at"] for row in rows}
        if await ActionRepository(session, tenant_id).delete_unchanged(versions) is None:
            raise _Changed()

    async def _audit(self, pruned: Pruned, actor: Actor) -> None:
        metadata: dict[str, Any] = {
            "kind": pruned.kind,
            "before": pruned.before.isoformat(),
            "deleted": pruned.deleted,
            "archived_files": pruned.files,
        }
        if pruned.through_sequence is not None:
            metadata["through_sequence"] = pruned.through_sequence
        async with (
            tenant_session(self.sessionmaker, pruned.tenant_id) as session,
            session.begin(),
        ):
            await AuditService(session, self.rules).log(
                pruned.tenant_id,
                "purge",
                AUDITED_TABLE[pruned.kind],
                str(pruned.tenant_id),
                actor=Actor(actor.id, actor.ip_address, actor.user_agent),
                metadata=metadata,
            )

    async def prune_by_policy(
        self,
        tenant_id: UUID,
        retention_days: int | None,
        audit_retention_days: int | None,
        actor: Actor,
        kinds: Sequence[Kind] = KINDS,
        now: datetime | None = None,
    ) -> list[Pruned]:
        """Apply a tenant's policy: each kind with a number of days, cut off from `now`."""
        days = {"actions": retention_days, "audits": audit_retention_days}
        done = []
        for kind in kinds:
            if (kept := days[kind]) is not None:
                done.append(await self.prune(tenant_id, kind, retention_cutoff(kept, now), actor))
        return done


def _record(kind: Kind, written: WrittenArchive) -> ArchiveRecord:
    m = written.manifest
    return ArchiveRecord(
        kind=kind,
        period=m["period"],
        path=written.path,
        host=m["host"],
        row_count=m["rows"],
        bytes=m["bytes"],
        sha256=m["sha256"],
        first_at=datetime.fromisoformat(m["first_at"]),
        last_at=datetime.fromisoformat(m["last_at"]),
        first_sequence=m["first_sequence"],
        last_sequence=m["last_sequence"],
        first_hash=m["first_hash"],
        last_hash=m["last_hash"],
    )


async def archives(
    session: AsyncSession,
    tenant_id: UUID | None,
    kind: str | None,
    since: datetime | None,
    skip: int,
    limit: int,
) -> list[ArchiveRead]:
    """Recorded archive files (one tenant's, or every tenant's for the operator)."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    rows = await list_archives(session, tenant_id, kind, since, skip, limit)
    return [ArchiveRead.model_validate(row) for row in rows]
