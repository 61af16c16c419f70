"""Checking the service's tree heads and Merkle proofs offline, trusting only its public key.

    from actionlog_client.proofs import check_event_in_head, check_heads_consistent
    check_event_in_head(event, proof, head, public_key)   # raises ProofError if it fails
    check_heads_consistent(older_head, newer_head, consistency, public_key)

`event` is an audit event as `GET /api/v1/logs/audits/{id}` returned it, `proof` the answer of
`GET …/{id}/proof?tree_size=N`, heads those of `GET …/tree-head` or `…/tree-heads`, and
`public_key` the `public_key` of `GET …/public-key`, kept by the auditor. The checks are
RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency), and the Ed25519 signature of a head;
the service's `actionlog verify-proof` runs the same ones. Signatures need the `cryptography`
package (`pip install actionlog-client[proofs]`); the hash checks need nothing.
"""

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ProofError",
    "check_event_in_head",
    "check_heads_consistent",
    "tree_head_message",
    "verify_consistency",
    "verify_inclusion",
    "verify_tree_head",
]

TREE_HEAD_PREFIX = b"actionlog-tree-head-v1\n"
SIGNED_FIELDS = ("key_id", "root_hash", "tenant_id", "timestamp", "tree_size")


class ProofError(ValueError):
    """A proof or tree head that does not verify; the message says why."""


def tree_head_message(head: Mapping[str, Any]) -> bytes:
    """The bytes a tree head's signature covers."""
    fields = {name: head[name] for name in SIGNED_FIELDS}
    return TREE_HEAD_PREFIX + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def _hash(hex_value: Any, what: str) -> bytes:
    try:
        value = bytes.fromhex(hex_value)
    except (TypeError, ValueError):
        raise ProofError(f"{what} is not hex") from None
    if len(value) != 32:
        raise ProofError(f"{what} is not 32 bytes")
    return value


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_tree_head(head: Mapping[str, Any], public_key: str) -> None:
    """Raise ProofError unless `head` is signed by `public_key` (base64 of the raw 32 bytes)."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError(
            "checking a tree head's signature needs `cryptography`: "
            "pip install 'actionlog-client[proofs]'"
        ) from None
    missing = [name for name in (*SIGNED_FIELDS, "signature") if name not in head]
    if missing:
        raise ProofError(f"the tree head has no {', '.join(missing)}")
    try:
        key_bytes = base64.b64decode(public_key, validate=True)
        key = Ed25519PublicKey.from_public_bytes(key_bytes)
        signature = base64.b64decode(head["signature"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ProofError("the public key or the signature is not valid base64") from None
    if hashlib.sha256(key_bytes).hexdigest() != head["key_id"]:
        raise ProofError("the tree head is signed by another key (key_id differs)")
    try:
        key.verify(signature, tree_head_message(head))
    except InvalidSignature:
        raise ProofError("the tree head's signature does not verify") from None


def verify_inclusion(
    leaf_data_hex: str, leaf_index: int, tree_size: int, path: Sequence[str], root_hex: str
) -> None:
    """RFC 9162 §2.1.3.2: raise ProofError unless the leaf (an event's chain `hash`) is at
    `leaf_index` of the tree of `tree_size` leaves whose root is `root_hex`."""
    if not 0 <= leaf_index < tree_size:
        raise ProofError("the leaf index is outside the tree")
    fn, sn = leaf_index, tree_size - 1
    r = hashlib.sha256(b"\x00" + _hash(leaf_data_hex, "the event hash")).digest()
    for step in path:
        p = _hash(step, "an audit path entry")
        if sn == 0:
            raise ProofError("the audit path is too long")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the audit path is too short")
    if r != _hash(root_hex, "the root hash"):
        raise ProofError("the inclusion proof does not lead to the tree head's root")


def verify_consistency(
    first: int, second: int, proof: Sequence[str], first_root_hex: str, second_root_hex: str
) -> None:
    """RFC 9162 §2.1.4.2: raise ProofError unless the tree of `first` leaves with root
    `first_root_hex` is a prefix of the tree of `second` leaves with root `second_root_hex`."""
    first_root = _hash(first_root_hex, "the first root hash")
    second_root = _hash(second_root_hex, "the second root hash")
    if not 0 < first <= second:
        raise ProofError("the sizes must satisfy 0 < first <= second")
    if first == second:
        if proof or first_root != second_root:
            raise ProofError("two heads of one size must have one root and an empty proof")
        return
    path = [_hash(step, "a consistency proof entry") for step in proof]
    if not path:
        raise ProofError("the consistency proof is empty")
    if first & (first - 1) == 0:  # a power of two: the first tree is a node of the second
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the consistency proof is too short")
    if fr != first_root or sr != second_root:
        raise ProofError("the consistency proof does not join the two roots")


def check_event_in_head(
    event: Mapping[str, Any], proof: Mapping[str, Any], head: Mapping[str, Any], public_key: str
) -> None:
    """The auditor's question in one call: is `event` (its `hash`, as the service returned
    it) in the log that `head` signed? Checks the head's signature, then the proof."""
    verify_tree_head(head, public_key)
    if proof.get("tree_size") != head["tree_size"] or proof.get("root_hash") != head["root_hash"]:
        raise ProofError("the proof is for another tree than the tree head")
    verify_inclusion(
        event["hash"],
        proof["leaf_index"],
        proof["tree_size"],
        proof["audit_path"],
        head["root_hash"],
    )
    if "sequence" in event and event["sequence"] != proof["leaf_index"] + 1:
        raise ProofError("the proof is for another position than the event's sequence")


def check_heads_consistent(
    older: Mapping[str, Any], newer: Mapping[str, Any], proof: Mapping[str, Any], public_key: str
) -> None:
    """Two signed tree heads and the consistency proof between them: the newer log extends
    the older one without changing any of its events."""
    verify_tree_head(older, public_key)
    verify_tree_head(newer, public_key)
    if older["tenant_id"] != newer["tenant_id"]:
        raise ProofError("the tree heads are of different tenants")
    if (proof.get("first"), proof.get("second")) != (older["tree_size"], newer["tree_size"]):
        raise ProofError("the consistency proof is for other tree sizes than the heads")
    verify_consistency(
        older["tree_size"],
        newer["tree_size"],
        proof["proof"],
        older["root_hash"],
        newer["root_hash"],
    )
