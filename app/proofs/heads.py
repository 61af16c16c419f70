"""Signed tree heads: a tenant's tree size and root, at a time, signed by the audit key.

Signed with the key that signs audit checkpoints (app/audits/signing.py), published at
`GET /api/v1/logs/audits/public-key`, over the bytes of `verify.tree_head_message`: a
prefix, then the JSON of key_id, root_hash, tenant_id, timestamp and tree_size with sorted
keys and no whitespace. The timestamp is signed as the string the service returns (UTC,
microseconds, `Z`), so a verifier never reformats a time.
"""

from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from app.audits.signing import Signer
from app.proofs.models import AuditTreeHead
from app.proofs.verify import tree_head_message


def timestamp_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class TreeHead:
    tenant_id: str
    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: str

    @classmethod
    def signed(
        cls, signer: Signer, tenant_id: UUID, tree_size: int, root: bytes, at: datetime
    ) -> "TreeHead":
        unsigned = cls(str(tenant_id), tree_size, root.hex(), timestamp_text(at), signer.key_id, "")
        signature = signer.sign(tree_head_message(unsigned.as_json()))
        return replace(unsigned, signature=signature)

    @classmethod
    def of_row(cls, row: AuditTreeHead) -> "TreeHead":
        return cls(
            str(row.tenant_id),
            row.tree_size,
            row.root_hash,
            timestamp_text(row.timestamp),
            row.key_id,
            row.signature,
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def row(self) -> dict[str, Any]:
        return {
            "tenant_id": UUID(self.tenant_id),
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "timestamp": datetime.strptime(self.timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=UTC
            ),
            "key_id": self.key_id,
            "signature": self.signature,
        }
