"""Recomputing a tenant's audit chain from its stored rows.

Rows are read in sequence order a chunk at a time, so memory stays constant however long the
chain is. A row does not verify when its sequence is not the next one (rows were deleted, or
one was inserted with a made-up sequence), when its `prev_hash` is not the previous row's
hash, or when its content no longer hashes to its `hash` (it was edited). Finally the last
row must be the one the chain head records: that catches rows deleted from the end and rows
appended without going through the service.

A chain that was rewritten end to end, head included, verifies again; keep the `head_hash`
of a verification outside the database to detect that, as with CloudTrail's digest files.

When retention has pruned the oldest rows, verification starts from the latest signed
checkpoint (`app/audits/checkpoints.py`) instead of the genesis hash: the first remaining row
must be the checkpoint's sequence + 1 and follow its hash.
"""

from typing import Any
from uuid import UUID

from app.audits.chain import GENESIS_HASH, row_hash
from app.audits.repository import AuditRepository, ChainHead
from app.audits.schemas import ChainVerification

CHUNK_ROWS = 500


class _Broken(Exception):
    def __init__(self, sequence: int | None, row_id: UUID | None, reason: str) -> None:
        super().__init__(reason)
        self.sequence, self.row_id, self.reason = sequence, row_id, reason


class ChainVerifier:
    def __init__(
        self,
        repository: AuditRepository,
        chunk_rows: int = CHUNK_ROWS,
        start: ChainHead | None = None,
    ) -> None:
        """Verify the rows after `start` (a checkpoint), or the whole chain from genesis."""
        self.repository = repository
        self.chunk_rows = chunk_rows
        self.checked = 0
        self.start = start or ChainHead(0, GENESIS_HASH)
        self.last_sequence = self.start.sequence
        self.last_hash = self.start.hash
        self.last_id: UUID | None = None

    async def run(self) -> ChainVerification:
        try:
            head = await self._verify()
        except _Broken as broken:
            head = await self.repository.head() or ChainHead(0, GENESIS_HASH)
            return ChainVerification(
                valid=False,
                checked=self.checked,
                head_sequence=head.sequence,
                head_hash=head.hash,
                first_invalid_sequence=broken.sequence,
                first_invalid_id=broken.row_id,
                reason=broken.reason,
            )
        return ChainVerification(
            valid=True, checked=self.checked, head_sequence=head.sequence, head_hash=head.hash
        )

    async def _verify(self) -> ChainHead:
        retried_for: int | None = None
        while True:
            rows = await self.repository.chain_rows(self.last_sequence, self.chunk_rows)
            for row in rows:
                self._check(row._mapping)
            if len(rows) == self.chunk_rows:
                continue
            # The head is read after the rows: a row that is visible was committed together
            # with a head at least as far along, so a head behind the rows is never a race.
            head = await self.repository.head()
            if head and head.sequence > self.last_sequence and head.sequence != retried_for:
                retried_for = head.sequence  # rows committed during the scan: read them too
                continue
            return await self._check_head(head)

    def _check(self, row: Any) -> None:
        expected = self.last_sequence + 1
        if row["sequence"] != expected:
            missing = f"; sequences {expected}..{row['sequence'] - 1} are missing"
            raise _Broken(
                row["sequence"],
                row["id"],
                f"expected sequence {expected} but found {row['sequence']}"
                + (missing if row["sequence"] > expected else ""),
            )
        if row["prev_hash"] != self.last_hash:
            previous = f"row {self.last_sequence}" if self.last_sequence else "the genesis hash"
            if self.last_sequence and self.last_sequence == self.start.sequence:
                previous = f"the checkpoint at sequence {self.last_sequence}"
            raise _Broken(
                row["sequence"], row["id"], f"prev_hash does not match the hash of {previous}"
            )
        if row_hash(self.last_hash, row) != row["hash"]:
            raise _Broken(
                row["sequence"],
                row["id"],
                "the row's content does not match its hash: it was changed after it was written",
            )
        self.checked += 1
        self.last_sequence, self.last_hash, self.last_id = row["sequence"], row["hash"], row["id"]

    async def _check_head(self, head: ChainHead | None) -> ChainHead:
        last = self.last_sequence
        if head is None:
            if last == 0:
                return ChainHead(0, GENESIS_HASH)
            raise _Broken(None, None, f"the chain has {last} rows but no head record")
        if head.sequence < last:
            beyond = head.sequence + 1
            self.checked = head.sequence
            raise _Broken(
                beyond,
                await self.repository.id_at(beyond),
                f"row {beyond} is beyond the chain head (sequence {head.sequence}): "
                "it was not appended through the service",
            )
        if head.sequence > last:
            raise _Broken(
                last + 1,
                None,
                f"the chain head records sequence {head.sequence} but the last row is {last}: "
                f"sequences {last + 1}..{head.sequence} are missing",
            )
        if head.hash != self.last_hash:
            what = "the checkpoint" if last == self.start.sequence else "row"
            raise _Broken(last, self.last_id, f"the chain head's hash does not match {what} {last}")
        return head
