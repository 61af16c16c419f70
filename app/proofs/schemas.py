"""The Merkle log's API shapes: tree heads, inclusion proofs, consistency proofs (RFC 9162)."""

from pydantic import BaseModel, Field


class TreeHeadRead(BaseModel):
    """A signed tree head: check it with the key at `/api/v1/logs/audits/public-key`."""

    tenant_id: str
    tree_size: int = Field(description="How many audit events the tree holds")
    root_hash: str = Field(description="The RFC 9162 root hash, hex")
    timestamp: str = Field(description="When it was signed, ISO 8601 UTC, signed as written")
    key_id: str = Field(description="The signing key's id (SHA-256 of the public key, hex)")
    signature: str = Field(
        description="Ed25519, base64, over `actionlog-tree-head-v1\\n` followed by the JSON of "
        "key_id, root_hash, tenant_id, timestamp and tree_size (sorted keys, no whitespace)"
    )


class InclusionProof(BaseModel):
    """RFC 9162 §2.1.3: the event's leaf and the audit path from it to the root."""

    leaf_index: int = Field(description="The event's position: its sequence - 1")
    tree_size: int
    leaf_hash: str = Field(description="SHA-256 of 0x00 and the event's chain hash, hex")
    audit_path: list[str] = Field(description="Sibling hashes, leaf side first, hex")
    root_hash: str


class ConsistencyProof(BaseModel):
    """RFC 9162 §2.1.4: the tree of `first` events is a prefix of the tree of `second`."""

    first: int
    second: int
    proof: list[str] = Field(description="Subtree hashes, hex")
